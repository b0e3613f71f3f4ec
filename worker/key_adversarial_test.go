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
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// Demo registry enterprises the adversarial tests play against each other.
const (
	advSubmitter  = "912345602" // Nordlys Leasing: the attacker in these tests
	advCompetitor = "912345610" // Fjord Bilutleie: owns FJ20001
)

// TestParseKeyAdversarial feeds ParseKey the keys an attacker would try:
// traversal (plain and percent-encoded), absolute paths, backslashes,
// control characters, look-alike digits in the orgnr, over-long names and
// nested prefixes.
func TestParseKeyAdversarial(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n-len(".csv")) + ".csv" }
	for _, tc := range []struct {
		name      string
		key       string
		verdict   KeyVerdict
		submitter string
	}{
		// Traversal, plain.
		{"ErrDotDotIntoCompetitorInbox", "inbox/912345602/../912345610/x.csv", KeyBadName, advSubmitter},
		{"ErrDotDotIntoCompetitorReceipts", "inbox/912345602/../../receipts/912345610/x.csv", KeyBadName, advSubmitter},
		{"ErrDotDotAsOrgnr", "inbox/../912345610/x.csv", KeyNoSubmitter, ""},
		{"ErrDotDotName", "inbox/912345602/..", KeyBadName, advSubmitter},
		{"ErrDotName", "inbox/912345602/.", KeyBadName, advSubmitter},
		{"ErrDotSegment", "inbox/912345602/./x.csv", KeyBadName, advSubmitter},
		{"ErrDotDotInsideName", "inbox/912345602/x..csv", KeyBadName, advSubmitter},
		// Traversal, percent-encoded: "..%2f" still holds "..".
		{"ErrEncodedSlashAfterDotDot", "inbox/912345602/..%2f912345610%2fx.csv", KeyBadName, advSubmitter},
		{"ErrEncodedBackslashAfterDotDot", "inbox/912345602/..%5c912345610%5cx.csv", KeyBadName, advSubmitter},
		{"ErrEncodedOrgnr", "inbox/%2e%2e/912345610/x.csv", KeyNoSubmitter, ""},
		{"ErrEncodedDigitsInOrgnr", "inbox/%39%31%32%33%34%35%36%30%32/x.csv", KeyNoSubmitter, ""},
		// Overlong UTF-8 for "../" is not valid UTF-8.
		{"ErrOverlongUTF8DotDotSlash", "inbox/912345602/\xc0\xae\xc0\xae\xc0\xafx.csv", KeyBadName, advSubmitter},
		{"ErrInvalidUTF8", "inbox/912345602/\xff\xfe.csv", KeyBadName, advSubmitter},
		// Absolute paths and empty segments.
		{"IgnoredAbsolute", "/inbox/912345602/x.csv", KeyNotInbox, ""},
		{"IgnoredAbsoluteEtc", "/etc/passwd", KeyNotInbox, ""},
		{"ErrEmptyOrgnrSegment", "inbox//912345602/x.csv", KeyNoSubmitter, ""},
		{"ErrEmptyNameSegment", "inbox/912345602//x.csv", KeyBadName, advSubmitter},
		{"ErrFolderMarker", "inbox/912345602/", KeyBadName, advSubmitter},
		{"ErrNoFolder", "inbox/912345602", KeyNoSubmitter, ""},
		// Backslashes.
		{"ErrBackslashName", "inbox/912345602/..\\912345610\\x.csv", KeyBadName, advSubmitter},
		{"ErrWindowsPath", "inbox/912345602/C:\\x.csv", KeyBadName, advSubmitter},
		{"ErrBackslashAfterOrgnr", "inbox/912345602\\x.csv", KeyNoSubmitter, ""},
		{"IgnoredBackslashPrefix", "inbox\\912345602\\x.csv", KeyNotInbox, ""},
		// Control characters: C0, DEL, C1, Unicode line separators.
		{"ErrNUL", "inbox/912345602/x\x00.csv", KeyBadName, advSubmitter},
		{"ErrTab", "inbox/912345602/x\t.csv", KeyBadName, advSubmitter},
		{"ErrCR", "inbox/912345602/x\r.csv", KeyBadName, advSubmitter},
		{"ErrLF", "inbox/912345602/x\n.csv", KeyBadName, advSubmitter},
		{"ErrEscape", "inbox/912345602/\x1b[2Jx.csv", KeyBadName, advSubmitter},
		{"ErrDEL", "inbox/912345602/x\x7f.csv", KeyBadName, advSubmitter},
		{"ErrNEL", "inbox/912345602/x\u0085.csv", KeyBadName, advSubmitter},
		{"ErrLineSeparator", "inbox/912345602/x\u2028.csv", KeyBadName, advSubmitter},
		{"ErrParagraphSeparator", "inbox/912345602/x\u2029.csv", KeyBadName, advSubmitter},
		{"ErrControlInOrgnr", "inbox/912345602\x00/x.csv", KeyNoSubmitter, ""},
		// Look-alike digits and padding in the orgnr.
		{"ErrFullWidthDigits", "inbox/９１２３４５６０２/x.csv", KeyNoSubmitter, ""},
		{"ErrOneFullWidthDigit", "inbox/91234560２/x.csv", KeyNoSubmitter, ""},
		{"ErrArabicIndicDigits", "inbox/٩١٢٣٤٥٦٠٢/x.csv", KeyNoSubmitter, ""},
		{"ErrExtendedArabicIndicDigits", "inbox/۹۱۲۳۴۵۶۰۲/x.csv", KeyNoSubmitter, ""},
		{"ErrDevanagariDigits", "inbox/९१२३४५६०२/x.csv", KeyNoSubmitter, ""},
		{"ErrMathBoldDigits", "inbox/𝟗𝟏𝟐𝟑𝟒𝟓𝟔𝟎𝟐/x.csv", KeyNoSubmitter, ""},
		{"ErrSuperscriptDigit", "inbox/91234560²/x.csv", KeyNoSubmitter, ""},
		{"ErrZeroWidthSpace", "inbox/912345602\u200b/x.csv", KeyNoSubmitter, ""},
		{"ErrLeadingSpace", "inbox/ 912345602/x.csv", KeyNoSubmitter, ""},
		{"ErrTrailingSpace", "inbox/912345602 /x.csv", KeyNoSubmitter, ""},
		{"ErrSpacedOrgnr", "inbox/912 345 602/x.csv", KeyNoSubmitter, ""},
		{"ErrPlusSign", "inbox/+912345602/x.csv", KeyNoSubmitter, ""},
		{"ErrLeadingZero", "inbox/0912345602/x.csv", KeyNoSubmitter, ""},
		{"ErrBadCheckDigit", "inbox/912345603/x.csv", KeyNoSubmitter, ""},
		{"ErrPersonalNumberAsOrgnr", "inbox/12128822249/x.csv", KeyNoSubmitter, ""},
		{"IgnoredUpperCasePrefix", "INBOX/912345602/x.csv", KeyNotInbox, ""},
		// Over-long names: the limit is 255 bytes, counted in bytes.
		{"OKName255Bytes", "inbox/912345602/" + long(255), KeyOK, advSubmitter},
		{"ErrName256Bytes", "inbox/912345602/" + long(256), KeyBadName, advSubmitter},
		{"ErrName256BytesMultibyte", "inbox/912345602/" + strings.Repeat("æ", 128), KeyBadName, advSubmitter},
		{"ErrName4KiB", "inbox/912345602/" + long(4096), KeyBadName, advSubmitter},
		// Nested prefixes.
		{"ErrSubFolder", "inbox/912345602/sub/x.csv", KeyBadName, advSubmitter},
		{"ErrCompetitorFolderBelowOwn", "inbox/912345602/912345610/x.csv", KeyBadName, advSubmitter},
		{"ErrInboxBelowOwn", "inbox/912345602/inbox/912345610/x.csv", KeyBadName, advSubmitter},
		{"ErrReceiptsBelowOwn", "inbox/912345602/receipts/912345610/x.csv", KeyBadName, advSubmitter},
		// Kept literally: S3 keys are never URL-decoded, so these are plain
		// names in the submitter's own folder (see the threat model).
		{"OKPercentEncodedIsLiteral", "inbox/912345602/%2e%2e%2f912345610%2fx.csv", KeyOK, advSubmitter},
		{"OKFullWidthSolidusIsLiteral", "inbox/912345602/a／b.csv", KeyOK, advSubmitter},
		{"OKTwoDotLeaderIsLiteral", "inbox/912345602/‥x.csv", KeyOK, advSubmitter},
		{"OKSQLLookingName", "inbox/912345602/x'; DROP TABLE jobs; --.csv", KeyOK, advSubmitter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseKey(tc.key)
			if got.Verdict != tc.verdict || got.Submitter != tc.submitter {
				t.Fatalf("ParseKey(%q) = verdict %d submitter %q (%s); want verdict %d submitter %q",
					tc.key, got.Verdict, got.Submitter, got.Reason, tc.verdict, tc.submitter)
			}
			if got.Verdict != KeyOK && got.Reason == "" {
				t.Errorf("ParseKey(%q): refused without a reason", tc.key)
			}
			if got.Verdict == KeyOK && (strings.ContainsAny(got.Name, "/\\") || got.Name != strings.TrimPrefix(tc.key, InboxPrefix+got.Submitter+"/")) {
				t.Errorf("ParseKey(%q): accepted name %q is not the literal last segment", tc.key, got.Name)
			}
		})
	}
}

// FuzzDerivedKeysStayInPrefix checks, for any key, that every object key
// the handler derives from it (receipt, summary, XLSX receipt, archive,
// failed, quarantine) is a clean path inside the prefix the verdict
// allows: the submitter's own folders, or quarantine/.
func FuzzDerivedKeysStayInPrefix(f *testing.F) {
	for _, s := range []string{
		"inbox/912345602/a.csv", "inbox/912345602/../912345610/x.csv", "inbox/../912345610/x.csv",
		"inbox/912345602/..%2f912345610%2fx.csv", "inbox/912345602/.", "inbox/912345602/", "inbox//x",
		"inbox/912345602/\xc0\xae\xc0\xae/x", "inbox/９１２３４５６０２/x.csv", "inbox/912345602/a\\..\\b",
		"inbox/912345602/" + strings.Repeat("..", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := ParseKey(key)
		var derived []string
		var allowed []string
		switch p.Verdict {
		case KeyNotInbox:
			return // not processed: nothing is written
		case KeyNoSubmitter:
			name := receipt.SafeName(p.Name)
			derived = []string{"quarantine/" + JobID("b", key, "v") + "-" + name}
			allowed = []string{"quarantine/"}
		case KeyOK, KeyBadName:
			name := receipt.SafeName(p.Name)
			rk, sk := receipt.Keys(p.Submitter, name)
			derived = []string{rk, sk, receipt.XLSXKey(p.Submitter, name),
				path.Join("archive", p.Submitter, name), path.Join("failed", p.Submitter, name)}
			allowed = []string{"receipts/" + p.Submitter + "/", "archive/" + p.Submitter + "/", "failed/" + p.Submitter + "/"}
			if len(p.Submitter) != 9 || !isASCIIDigits(p.Submitter) {
				t.Fatalf("verdict %d with submitter %q", p.Verdict, p.Submitter)
			}
		}
		for _, d := range derived {
			if msg := unsafeDerivedKey(d, allowed); msg != "" {
				t.Fatalf("key %q: derived %q %s", key, d, msg)
			}
		}
	})
}

// unsafeDerivedKey says what is wrong with a key the handler writes, or "".
func unsafeDerivedKey(k string, allowed []string) string {
	switch {
	case !slices.ContainsFunc(allowed, func(p string) bool { return strings.HasPrefix(k, p) }):
		return fmt.Sprintf("is outside %q", allowed)
	case path.Clean(k) != k:
		return "is not a clean path (\".\" or \"..\" segments, empty segments)"
	case strings.Count(k, "/") != strings.Count(allowed[0], "/"):
		return "is not directly inside its folder"
	case strings.ContainsRune(k, '\\'):
		return "holds a backslash"
	case !utf8.ValidString(k):
		return "is not valid UTF-8"
	case strings.IndexFunc(k, isC0Control) >= 0:
		return "holds a control character"
	case len(k) > 1024:
		return "is longer than S3 allows"
	}
	return ""
}

// isC0Control reports the characters receipt.SafeName replaces: C0 and
// DEL. (C1 controls and U+2028/U+2029 survive SafeName; see the threat
// model, gap G4.)
func isC0Control(r rune) bool { return r < 0x20 || r == 0x7f }

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

func (m *memObjects) Head(ctx context.Context, key string) (s3store.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return s3store.Object{}, fmt.Errorf("head: %w", s3store.ErrNotFound)
	}
	return s3store.Object{Key: key, Size: int64(len(b)), ETag: etagOf(b)}, nil
}

func (m *memObjects) Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (s3store.Object, error) {
	m.mu.Lock()
	b, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return s3store.Object{}, fmt.Errorf("get: %w", s3store.ErrNotFound)
	}
	if ifMatchETag != "" && ifMatchETag != etagOf(b) {
		return s3store.Object{}, fmt.Errorf("get: %w", s3store.ErrPreconditionFailed)
	}
	if _, err := w.Write(b); err != nil {
		return s3store.Object{}, err
	}
	return s3store.Object{Key: key, Size: int64(len(b)), ETag: etagOf(b)}, nil
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
		verdict KeyVerdict
	}{
		{"DotDotIntoCompetitorInbox", "inbox/912345602/../912345610/x.csv", KeyBadName},
		{"DotDotIntoCompetitorReceipts", "inbox/912345602/../../receipts/912345610/x.csv", KeyBadName},
		{"DotDotAsOrgnr", "inbox/../912345610/x.csv", KeyNoSubmitter},
		{"DotDotOnly", "inbox/912345602/..", KeyBadName},
		{"EncodedDotDotSlash", "inbox/912345602/..%2f912345610%2fx.csv", KeyBadName},
		{"PercentEncodedLiteral", "inbox/912345602/%2e%2e%2f912345610%2fx.csv", KeyOK},
		{"Absolute", "/inbox/912345602/x.csv", KeyNotInbox},
		{"EmptyOrgnrSegment", "inbox//912345610/x.csv", KeyNoSubmitter},
		{"EmptyNameSegment", "inbox/912345602//../912345610/x.csv", KeyBadName},
		{"Backslashes", "inbox/912345602/..\\..\\receipts\\912345610\\x.csv", KeyBadName},
		{"ControlCharacters", "inbox/912345602/x\x00\r\n\x1b.csv", KeyBadName},
		{"InvalidUTF8", "inbox/912345602/\xc0\xae\xc0\xae\xc0\xafx.csv", KeyBadName},
		{"FullWidthOrgnr", "inbox/９１２３４５６１０/x.csv", KeyNoSubmitter},
		{"ArabicIndicOrgnr", "inbox/٩١٢٣٤٥٦١٠/x.csv", KeyNoSubmitter},
		{"OverLongName", "inbox/912345602/" + strings.Repeat("../", 100) + "x.csv", KeyBadName},
		{"OverLongPlainName", "inbox/912345602/" + strings.Repeat("n", 300) + ".csv", KeyBadName},
		{"NestedCompetitorPrefix", "inbox/912345602/inbox/912345610/x.csv", KeyBadName},
		{"NestedReceiptsPrefix", "inbox/912345602/receipts/912345610/x.csv.receipt.csv", KeyBadName},
		{"CompetitorFolderBelowOwn", "inbox/912345602/912345610/x.csv", KeyBadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := advStore(t)
			objects := newMemObjects()
			for k, b := range competitorObjects {
				objects.seed(k, b)
			}
			objects.seed(tc.key, []byte(hostileCSV))
			h := NewHandler(objects, store, Config{Limits: DefaultConfig().Limits, ChunkSize: 2, TempDir: t.TempDir()}, slog.New(slog.DiscardHandler))
			p := IngestPayload{Bucket: testBucket, Key: tc.key, Version: "v1", ETag: etagOf([]byte(hostileCSV)), Size: int64(len(hostileCSV))}

			pk := ParseKey(tc.key)
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

			var allowed []string
			switch tc.verdict {
			case KeyOK:
				allowed = []string{"receipts/" + pk.Submitter + "/", "archive/" + pk.Submitter + "/"}
			case KeyBadName:
				allowed = []string{"receipts/" + pk.Submitter + "/", "failed/" + pk.Submitter + "/"}
			case KeyNoSubmitter:
				allowed = []string{"quarantine/"}
			}
			for _, w := range objects.writes {
				if msg := unsafeDerivedKey(w, allowed); msg != "" {
					t.Errorf("wrote %q, which %s", w, msg)
				}
			}
			for _, d := range objects.deletes {
				// Besides the upload, only a stale summary in the
				// submitter's own receipts may go (publish replaces it).
				ownSummary := pk.Submitter != "" && strings.HasPrefix(d, "receipts/"+pk.Submitter+"/") &&
					strings.HasSuffix(d, ".summary.json") && unsafeDerivedKey(d, []string{"receipts/" + pk.Submitter + "/"}) == ""
				if d != tc.key && !ownSummary {
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
				if msg := unsafeDerivedKey(k, allowed); msg != "" {
					t.Errorf("bucket holds %q, which %s", k, msg)
				}
			}

			switch tc.verdict {
			case KeyNotInbox:
				if len(objects.writes)+len(objects.deletes) != 0 {
					t.Errorf("a key outside inbox/ was acted on: writes %q, deletes %q", objects.writes, objects.deletes)
				}
			default:
				if _, still := after[tc.key]; still {
					t.Errorf("the upload stayed in the inbox")
				}
				job, err := store.Job(ctx, JobID(p.Bucket, p.Key, p.Version))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.verdict == KeyOK && (job.State != lessee.JobCompleted || job.Applied != 0 || job.Rejected != 3):
					t.Errorf("job %s applied %d rejected %d; want completed with every row rejected", job.State, job.Applied, job.Rejected)
				case tc.verdict != KeyOK && (job.State != lessee.JobRefused || job.Code != lessee.CodeInvalidKey):
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
	for _, key := range keys {
		if err := b.objects.Put(ctx, key, strings.NewReader(hostileCSV), int64(len(hostileCSV)), "text/csv"); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		o, err := b.objects.Head(ctx, key)
		if err != nil {
			t.Fatalf("head %q: %v", key, err)
		}
		p := IngestPayload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size, Version: ObjectVersion(o.VersionID, o.ETag, o.LastModified)}
		if err := b.handler.Process(ctx, p); err != nil {
			t.Fatalf("process %q: %v", key, err)
		}
	}
	var listed []string
	if err := b.objects.List(ctx, "", func(o s3store.Object) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range listed {
		if _, ok := competitor[k]; ok {
			continue
		}
		if msg := unsafeDerivedKey(k, []string{"receipts/" + advSubmitter + "/", "failed/" + advSubmitter + "/", "archive/" + advSubmitter + "/"}); msg != "" {
			if msg2 := unsafeDerivedKey(k, []string{"quarantine/"}); msg2 != "" {
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
	p := IngestPayload{Bucket: testBucket, Key: "inbox/912345602/leietakere.csv", Version: "v", ETag: "e", Size: 10}
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
