package worker

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/objectkey/objectkeytest"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// Demo registry enterprises the adversarial tests play against each other.
const (
	advSubmitter  = "912345602" // Nordlys Leasing: the attacker in these tests
	advCompetitor = "912345610" // Fjord Bilutleie: owns FJ20001
)

// memObjects is an object store with S3's semantics: a key is an opaque
// string, never a path, so what the handler asks for is exactly what it
// gets. It records every write and delete.
type memObjects struct {
	mu      sync.Mutex
	objects map[string][]byte
	writes  []string // destination keys of Put and Copy, in order
	deletes []string
}

func newMemObjects() *memObjects { return &memObjects{objects: map[string][]byte{}} }

func etagOf(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func (m *memObjects) Head(ctx context.Context, key string) (lessee.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return lessee.Object{}, fmt.Errorf("head: %w", s3store.ErrNotFound)
	}
	return lessee.Object{Key: key, Size: int64(len(b)), ETag: etagOf(b)}, nil
}

func (m *memObjects) Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (lessee.Object, error) {
	m.mu.Lock()
	b, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return lessee.Object{}, fmt.Errorf("get: %w", s3store.ErrNotFound)
	}
	if ifMatchETag != "" && ifMatchETag != etagOf(b) {
		return lessee.Object{}, fmt.Errorf("get: %w", s3store.ErrPreconditionFailed)
	}
	if _, err := w.Write(b); err != nil {
		return lessee.Object{}, err
	}
	return lessee.Object{Key: key, Size: int64(len(b)), ETag: etagOf(b)}, nil
}

func (m *memObjects) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = b
	m.writes = append(m.writes, key)
	return nil
}

func (m *memObjects) Copy(ctx context.Context, src, dst string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[src]
	if !ok {
		return fmt.Errorf("copy: %w", s3store.ErrNotFound)
	}
	m.objects[dst] = bytes.Clone(b)
	m.writes = append(m.writes, dst)
	return nil
}

func (m *memObjects) CopyIfMatch(ctx context.Context, src, dst, etag string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[src]
	if !ok {
		return "", fmt.Errorf("copy: %w", s3store.ErrNotFound)
	}
	if etag != "" && etag != etagOf(b) {
		return "", fmt.Errorf("copy: %w", s3store.ErrPreconditionFailed)
	}
	m.objects[dst] = bytes.Clone(b)
	m.writes = append(m.writes, dst)
	return etagOf(b), nil
}

func (m *memObjects) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	m.deletes = append(m.deletes, key)
	return nil
}

// seed stores objects directly, without recording them as writes.
func (m *memObjects) seed(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = b
}

func (m *memObjects) snapshot() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.objects)
}

// hostileCSV acts on the competitor's vehicle, directly and on its behalf:
// however a key is read, no row of it may apply.
const hostileCSV = "operation,registration_number,lessee_id,start_date,end_date,on_behalf_of,reference\n" +
	"add,FJ20001,17051743229,2026-01-01,,,direct\n" +
	"add,FJ20001,17051743229,2026-01-01,,912345610,on-behalf\n" +
	"remove,FJ20001,,,2026-02-01,912345610,remove\n"

// advStore returns a SQL store holding the demo registry.
func advStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	store := sqlstoretest.SQLite(t)
	dir := t.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), dir, sqlstore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestHandlerAdversarialKeysStayInPrefix runs the real handler, over a
// store with S3's key semantics and the demo registry in SQL, on hostile
// keys, and then checks every object key in the bucket: the handler wrote
// only below receipts/<orgnr>/, archive/<orgnr>/ or failed/<orgnr>/ of the
// submitter the key names, or quarantine/ when it names none; it deleted
// only the upload itself; the competitor's objects and vehicles are
// untouched.
func TestHandlerAdversarialKeysStayInPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	competitorObjects := map[string][]byte{
		"inbox/" + advCompetitor + "/x.csv":                 []byte("competitor upload"),
		"receipts/" + advCompetitor + "/x.csv.receipt.csv":  []byte("competitor receipt"),
		"receipts/" + advCompetitor + "/x.csv.summary.json": []byte("{}"),
		"archive/" + advCompetitor + "/x.csv":               []byte("competitor archive"),
		"failed/" + advCompetitor + "/x.csv":                []byte("competitor failed"),
		"receipts/" + advSubmitter + "/x.csv.receipt.csv":   []byte("own older receipt"),
	}
	for _, tc := range []struct {
		name    string
		key     string
		verdict objectkey.Verdict
	}{
		{"DotDotIntoCompetitorInbox", "inbox/912345602/../912345610/x.csv", objectkey.BadName},
		{"DotDotIntoCompetitorReceipts", "inbox/912345602/../../receipts/912345610/x.csv", objectkey.BadName},
		{"DotDotAsOrgnr", "inbox/../912345610/x.csv", objectkey.NoSubmitter},
		{"DotDotOnly", "inbox/912345602/..", objectkey.BadName},
		{"EncodedDotDotSlash", "inbox/912345602/..%2f912345610%2fx.csv", objectkey.BadName},
		{"PercentEncodedLiteral", "inbox/912345602/%2e%2e%2f912345610%2fx.csv", objectkey.OK},
		{"Absolute", "/inbox/912345602/x.csv", objectkey.NotInbox},
		{"EmptyOrgnrSegment", "inbox//912345610/x.csv", objectkey.NoSubmitter},
		{"EmptyNameSegment", "inbox/912345602//../912345610/x.csv", objectkey.BadName},
		{"Backslashes", "inbox/912345602/..\\..\\receipts\\912345610\\x.csv", objectkey.BadName},
		{"ControlCharacters", "inbox/912345602/x\x00\r\n\x1b.csv", objectkey.BadName},
		{"InvalidUTF8", "inbox/912345602/\xc0\xae\xc0\xae\xc0\xafx.csv", objectkey.BadName},
		{"FullWidthOrgnr", "inbox/９１２３４５６１０/x.csv", objectkey.NoSubmitter},
		{"ArabicIndicOrgnr", "inbox/٩١٢٣٤٥٦١٠/x.csv", objectkey.NoSubmitter},
		{"OverLongName", "inbox/912345602/" + strings.Repeat("../", 100) + "x.csv", objectkey.BadName},
		{"OverLongPlainName", "inbox/912345602/" + strings.Repeat("n", 300) + ".csv", objectkey.BadName},
		{"NestedCompetitorPrefix", "inbox/912345602/inbox/912345610/x.csv", objectkey.BadName},
		{"NestedReceiptsPrefix", "inbox/912345602/receipts/912345610/x.csv.receipt.csv", objectkey.BadName},
		{"CompetitorFolderBelowOwn", "inbox/912345602/912345610/x.csv", objectkey.BadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := advStore(t)
			objects := newMemObjects()
			for k, b := range competitorObjects {
				objects.seed(k, b)
			}
			objects.seed(tc.key, []byte(hostileCSV))
			h := NewHandler(objects, store, Config{Limits: DefaultConfig().Limits, ChunkSize: 2, TempDir: t.TempDir()}, slog.New(slog.DiscardHandler))
			p := IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: tc.key, Version: "v1", ETag: etagOf([]byte(hostileCSV)), Size: int64(len(hostileCSV))}}

			pk := objectkey.Parse(tc.key)
			if pk.Verdict != tc.verdict {
				t.Fatalf("verdict %d (%s), want %d", pk.Verdict, pk.Reason, tc.verdict)
			}
			if err := h.Process(ctx, p); err != nil {
				t.Fatalf("Process: %v", err)
			}
			// A second delivery (event plus scan) must not write elsewhere.
			if err := h.Process(ctx, p); err != nil {
				t.Fatalf("Process again: %v", err)
			}

			jobID := intake.JobID(p.Bucket, p.Key, p.Version)
			// A job's private folders: its pinned copy, and the receipts
			// its first attempt staged.
			private := []string{objectkey.Pinned, objectkey.StagingOf(jobID, 1)}
			var allowed []string
			switch tc.verdict {
			case objectkey.OK:
				allowed = append([]string{"receipts/" + pk.Submitter + "/", objectkey.HistoryOf(pk.Submitter, jobID), "archive/" + pk.Submitter + "/"}, private...)
			case objectkey.BadName:
				allowed = append([]string{"receipts/" + pk.Submitter + "/", objectkey.HistoryOf(pk.Submitter, jobID), "failed/" + pk.Submitter + "/"}, private...)
			case objectkey.NoSubmitter:
				allowed = []string{"quarantine/"}
			}
			for _, w := range objects.writes {
				if msg := objectkeytest.UnsafeDerivedKey(w, allowed); msg != "" {
					t.Errorf("wrote %q, which %s", w, msg)
				}
			}
			for _, d := range objects.deletes {
				// Besides the upload, only a stale summary in the
				// submitter's own receipts may go (publish replaces it).
				ownSummary := pk.Submitter != "" && strings.HasPrefix(d, "receipts/"+pk.Submitter+"/") &&
					strings.HasSuffix(d, ".summary.json") &&
					objectkeytest.UnsafeDerivedKey(d, []string{"receipts/" + pk.Submitter + "/", objectkey.HistoryOf(pk.Submitter, jobID)}) == ""
				ownPrivate := d == objectkey.PinnedKey(jobID) || objectkeytest.UnsafeDerivedKey(d, []string{objectkey.StagingOf(jobID, 1)}) == ""
				if d != tc.key && !ownSummary && !ownPrivate {
					t.Errorf("deleted %q, which is neither the upload nor its own summary", d)
				}
			}
			after := objects.snapshot()
			for k, b := range competitorObjects {
				if got, ok := after[k]; !ok || !bytes.Equal(got, b) {
					t.Errorf("object %q changed or vanished", k)
				}
			}
			// Every object now in the bucket was seeded or written by the
			// handler into an allowed place.
			for k := range after {
				if _, seeded := competitorObjects[k]; seeded || k == tc.key {
					continue
				}
				if msg := objectkeytest.UnsafeDerivedKey(k, allowed); msg != "" {
					t.Errorf("bucket holds %q, which %s", k, msg)
				}
			}

			switch tc.verdict {
			case objectkey.NotInbox:
				if len(objects.writes)+len(objects.deletes) != 0 {
					t.Errorf("a key outside inbox/ was acted on: writes %q, deletes %q", objects.writes, objects.deletes)
				}
			default:
				if _, still := after[tc.key]; still {
					t.Errorf("the upload stayed in the inbox")
				}
				job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.verdict == objectkey.OK && (job.State != lessee.JobCompleted || job.Applied != 0 || job.Rejected != 3):
					t.Errorf("job %s applied %d rejected %d; want completed with every row rejected", job.State, job.Applied, job.Rejected)
				case tc.verdict != objectkey.OK && (job.State != lessee.JobRefused || job.Code != lessee.CodeInvalidKey):
					t.Errorf("job %s %s; want refused INVALID_KEY", job.State, job.Code)
				}
			}
			audit, err := store.Audit(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(audit) != 0 {
				t.Errorf("the registry changed: %d audit entries", len(audit))
			}
			v, err := store.Vehicle(ctx, "WVWZZZ1KZAW000101")
			if err != nil || v.Owner != advCompetitor || len(v.Periods) != 0 {
				t.Errorf("competitor's vehicle FJ20001 = %+v, %v", v, err)
			}
		})
	}
}

// TestHandlerAdversarialKeysEmbeddedS3 runs the same checks over the real
// embedded S3 endpoint for the hostile keys it stores verbatim, and lists
// the whole bucket afterwards. Keys with "." or ".." segments, empty
// segments or a leading "/" are left out: the embedded endpoint cleans them
// as file paths (see TestServerRefusesUncleanKeys in storage/s3store); so
// are names over 255 bytes, which its file system refuses.
func TestHandlerAdversarialKeysEmbeddedS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	competitor := map[string]string{
		"inbox/" + advCompetitor + "/x.csv":                "competitor upload",
		"receipts/" + advCompetitor + "/x.csv.receipt.csv": "competitor receipt",
	}
	for k, v := range competitor {
		if err := b.objects.Put(ctx, k, strings.NewReader(v), int64(len(v)), "text/csv"); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{
		"inbox/912345602/..%2f912345610%2fx.csv",
		"inbox/912345602/%2e%2e%2f912345610%2fx.csv",
		"inbox/912345602/..\\912345610\\x.csv",
		"inbox/912345602/inbox/912345610/x.csv",
		"inbox/912345602/receipts/912345610/x.csv.receipt.csv",
		"inbox/９１２３４５６１０/x.csv",
		"inbox/٩١٢٣٤٥٦١٠/x.csv",
	}
	// The embedded endpoint itself refuses keys with control characters or
	// dot segments (storage/s3store TestServerRefusesUncleanKeys).
	if err := b.objects.Put(ctx, "inbox/912345602/x\t\n.csv", strings.NewReader(hostileCSV), int64(len(hostileCSV)), "text/csv"); err == nil {
		t.Error("the embedded S3 endpoint stored a key with control characters")
	}
	var histories []string // each job's own receipts folder
	for _, key := range keys {
		if err := b.objects.Put(ctx, key, strings.NewReader(hostileCSV), int64(len(hostileCSV)), "text/csv"); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		o, err := b.objects.Head(ctx, key)
		if err != nil {
			t.Fatalf("head %q: %v", key, err)
		}
		p := IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size, Version: intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)}}
		if err := b.handler.Process(ctx, p); err != nil {
			t.Fatalf("process %q: %v", key, err)
		}
		histories = append(histories, objectkey.HistoryOf(advSubmitter, intake.JobID(p.Bucket, p.Key, p.Version)))
	}
	var listed []string
	if err := b.objects.List(ctx, "", func(o lessee.Object) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range listed {
		if _, ok := competitor[k]; ok {
			continue
		}
		if msg := objectkeytest.UnsafeDerivedKey(k, append([]string{"receipts/" + advSubmitter + "/", "failed/" + advSubmitter + "/", "archive/" + advSubmitter + "/"}, histories...)); msg != "" {
			if msg2 := objectkeytest.UnsafeDerivedKey(k, []string{"quarantine/"}); msg2 != "" {
				t.Errorf("bucket holds %q, which %s", k, msg)
			}
		}
	}
	for k, v := range competitor {
		if got := string(b.get(t, k)); got != v {
			t.Errorf("competitor object %q = %q", k, got)
		}
	}
	if audit, _ := b.store.Audit(ctx, ""); len(audit) != 0 {
		t.Errorf("the registry changed: %d audit entries", len(audit))
	}
	t.Logf("bucket after processing %d hostile keys: %q", len(keys), listed)
}

// TestIngestPayloadCarriesOnlyIDs pins what a task (and so Redis and
// asynqmon) holds: the bucket, key, version, ETag and size of an upload,
// never its content. An identity number can reach a payload only through
// the key, which the submitter chose (see the threat model).
func TestIngestPayloadCarriesOnlyIDs(t *testing.T) {
	t.Parallel()
	p := IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: "inbox/912345602/leietakere.csv", Version: "v", ETag: "e", Size: 10}}
	task, err := NewIngestFileTask(p, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(task.Payload(), &fields); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, []string{"bucket", "etag", "key", "size", "version"}) {
		t.Errorf("payload fields %q, want only the upload's ids", got)
	}
}
