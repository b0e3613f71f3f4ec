package worker

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/s3store/s3storetest"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

const testBucket = "lessee"

// testBundle is a handler over the real embedded S3 endpoint and a real
// SQL store holding the demo registry.
type testBundle struct {
	handler *Handler
	objects *s3store.Client
	store   *sqlstore.Store
	// s3Clock stamps the LastModified of stored objects; tests move it on
	// instead of sleeping.
	s3Clock *testClock
}

// testClock is a clock that only moves when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T, store *sqlstore.Store) *testBundle {
	t.Helper()
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	srv, err := s3store.NewServer(s3store.ServerConfig{Dir: t.TempDir(), Bucket: testBucket, Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	b := setupOn(t, store, s3store.Config{Endpoint: hs.URL, AccessKey: "k", SecretKey: "s", Bucket: testBucket})
	b.s3Clock = clock
	return b
}

// setupMinIO is setup on a real MinIO server (skipped, visibly, without
// one); it has no s3Clock.
func setupMinIO(t *testing.T, store *sqlstore.Store) *testBundle {
	t.Helper()
	m := s3storetest.StartMinIO(t)
	return setupOn(t, store, s3store.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: testBucket})
}

// setupOn is setup on the S3 endpoint cfg names, creating its bucket.
func setupOn(t *testing.T, store *sqlstore.Store, cfg s3store.Config) *testBundle {
	t.Helper()
	ctx := context.Background()
	objects, err := s3store.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	wcfg := DefaultConfig()
	wcfg.TempDir = t.TempDir()
	wcfg.ChunkSize = 5 // several chunks even for the example files
	return &testBundle{handler: NewHandler(objects, store, wcfg, slog.New(slog.DiscardHandler)), objects: objects, store: store}
}

// put uploads an example file and returns the payload the scan would build.
func (b *testBundle) put(t *testing.T, key, example string) IngestPayload {
	t.Helper()
	ctx := context.Background()
	data, err := fs.ReadFile(examples.FS(), example)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.objects.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	o, err := b.objects.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size, Version: intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)}}
}

func (b *testBundle) get(t *testing.T, key string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.objects.Download(context.Background(), key, "", &buf); err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return buf.Bytes()
}

func TestHandlerSameUploadTwice(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		b := setup(t, store)
		p := b.put(t, "inbox/912345602/all-outcomes.csv", "changes/all-outcomes.csv")
		if err := b.handler.Process(ctx, p); err != nil {
			t.Fatal(err)
		}
		receipt := b.get(t, "receipts/912345602/all-outcomes.csv.receipt.csv")
		audit, err := store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		// The same object version delivered again (event + scan, a
		// redelivery) must not be processed again: no new audit entries,
		// the same receipt.
		if err := b.handler.Process(ctx, p); err != nil {
			t.Fatal(err)
		}
		again, err := store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(audit) || len(audit) == 0 {
			t.Errorf("audit entries: %d after first delivery, %d after second", len(audit), len(again))
		}
		if got := b.get(t, "receipts/912345602/all-outcomes.csv.receipt.csv"); !bytes.Equal(got, receipt) {
			t.Error("receipt changed on redelivery")
		}
		job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
		if err != nil {
			t.Fatal(err)
		}
		if job.State != lessee.JobCompleted || job.RowsDone != 22 || job.Applied != 6 {
			t.Errorf("job = %+v", job)
		}
	})
}

func TestHandlerResumesAfterCommittedChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	p := b.put(t, "inbox/912345602/all-outcomes.csv", "changes/all-outcomes.csv")

	// A first attempt that dies after two chunks: the store fails the third.
	failing := &failAfter{Store: store, chunks: 2}
	b.handler.store = failing
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("expected the injected failure")
	}
	job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil {
		t.Fatal(err)
	}
	if job.RowsDone != 10 || job.State == lessee.JobCompleted {
		t.Fatalf("after the failed attempt: rows done %d, state %s; want 10, running", job.RowsDone, job.State)
	}
	if _, err := b.objects.Head(ctx, "receipts/912345602/all-outcomes.csv.receipt.csv"); err == nil {
		t.Fatal("a receipt was published by the failed attempt")
	}

	// The retry resumes after the committed chunks.
	b.handler.store = store
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	rows := receiptRows(t, b.get(t, "receipts/912345602/all-outcomes.csv.receipt.csv"))
	want := expected(t, "changes/all-outcomes.expected.csv")
	if len(rows) != len(want) {
		t.Fatalf("receipt has %d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		if rows[i][0] != w[0] || rows[i][6] != w[1] || rows[i][7] != w[2] {
			t.Errorf("row %s: got %s %s, want %s %s", w[0], rows[i][6], rows[i][7], w[1], w[2])
		}
	}
	audit, err := store.Audit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 6 {
		t.Errorf("audit entries = %d, want 6 (one per applied row, none doubled)", len(audit))
	}
}

func TestHandlerRefusesBadKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	p := b.put(t, "inbox/912345602/sub/x.csv", "changes/all-outcomes.csv")
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	name := intake.JobID(p.Bucket, p.Key, p.Version) + "-sub_x.csv"
	summary := string(b.get(t, "receipts/912345602/"+name+".summary.json"))
	if !strings.Contains(summary, `"code": "INVALID_KEY"`) || !strings.Contains(summary, `"status": "refused"`) {
		t.Errorf("summary = %s", summary)
	}
	if _, err := b.objects.Head(ctx, "failed/912345602/"+name); err != nil {
		t.Errorf("source not moved to failed/: %v", err)
	}
	audit, _ := b.store.Audit(ctx, "")
	if len(audit) != 0 {
		t.Errorf("a refused file changed the registry: %d audit entries", len(audit))
	}
}

func TestScannerEnqueuesEachUploadOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	mr := miniredis.RunT(t)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: mr.Addr()})
	defer client.Close()
	scanner := newScan(b.objects, NewQueue(client, DefaultOptions(), slog.New(slog.DiscardHandler)))

	b.put(t, "inbox/912345602/a.csv", "changes/all-outcomes.csv")
	big := bytes.Repeat([]byte("x"), 2<<20)
	if err := b.objects.Put(ctx, "inbox/912345602/big.csv", bytes.NewReader(big), int64(len(big)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	if err := b.objects.Put(ctx, "archive/912345602/old.csv", bytes.NewReader(big[:10]), 10, "text/csv"); err != nil {
		t.Fatal(err)
	}
	n, err := scanner.Scan(ctx)
	if err != nil || n != 2 {
		t.Fatalf("first scan enqueued %d (%v), want 2", n, err)
	}
	n, err = scanner.Scan(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second scan enqueued %d (%v), want 0", n, err)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: mr.Addr()})
	defer insp.Close()
	for queue, want := range map[string]int{QueueSmall: 1, QueueLarge: 1} {
		info, err := insp.GetQueueInfo(queue)
		if err != nil || info.Pending != want {
			t.Errorf("queue %s: %+v, %v; want %d pending", queue, info, err, want)
		}
	}
	// A new upload under the same name is a new version: a new task.
	b.s3Clock.Add(time.Second) // versions without S3 versioning are ETag + second
	b.put(t, "inbox/912345602/a.csv", "changes/third-party.csv")
	if n, err := scanner.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan after re-upload enqueued %d (%v), want 1", n, err)
	}
}

// newScan is the service's intake over objects, queueing on queue.
func newScan(objects intake.Objects, queue intake.Queue) *intake.Intake {
	return intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: intake.DefaultMaxPerSubmitter},
		slog.New(slog.DiscardHandler))
}

// failAfter lets a number of chunks commit, then fails like a lost database.
type failAfter struct {
	Store
	mu     sync.Mutex // chunks of a file may be in flight at once
	chunks int
}

func (f *failAfter) ApplyChunkInTurn(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys,
	decide func(*lessee.State) lessee.Decision, turn lessee.ChunkTurn) error {
	f.mu.Lock()
	if f.chunks == 0 {
		f.mu.Unlock()
		return io.ErrUnexpectedEOF
	}
	f.chunks--
	f.mu.Unlock()
	return f.Store.ApplyChunkInTurn(ctx, jobID, checkpoint, keys, decide, turn)
}

func receiptRows(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

func expected(t *testing.T, name string) [][]string {
	t.Helper()
	b, err := fs.ReadFile(examples.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

// TestHandlerGiveUpAfterRetries: when transient failures outlast the
// retries, the file gets a PROCESSING_FAILED receipt and moves to failed/;
// rows applied before stay applied.
func TestHandlerGiveUpAfterRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	p := b.put(t, "inbox/912345602/all-outcomes.csv", "changes/all-outcomes.csv")
	b.handler.store = &failAfter{Store: store, chunks: 1}
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("expected the injected failure")
	}
	b.handler.store = store
	if err := b.handler.giveUp(ctx, p.Upload, io.ErrUnexpectedEOF); err != nil {
		t.Fatal(err)
	}
	summary := string(b.get(t, "receipts/912345602/all-outcomes.csv.summary.json"))
	if !strings.Contains(summary, `"code": "PROCESSING_FAILED"`) || !strings.Contains(summary, `"status": "refused"`) {
		t.Errorf("summary = %s", summary)
	}
	if _, err := b.objects.Head(ctx, "failed/912345602/all-outcomes.csv"); err != nil {
		t.Errorf("source not moved to failed/: %v", err)
	}
	// The receipt lists the rows processed before, then why it stopped.
	rows := receiptRows(t, b.get(t, "receipts/912345602/all-outcomes.csv.receipt.csv"))
	if len(rows) != 6 || rows[0][0] != "2" || rows[4][0] != "6" || rows[5][6] != "refused" || rows[5][7] != "PROCESSING_FAILED" {
		t.Errorf("receipt rows = %q; want rows 2-6 then the PROCESSING_FAILED line", rows)
	}
	job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil || job.State != lessee.JobRefused || job.RowsDone != 5 {
		t.Errorf("job = %+v, %v; want refused with the first chunk's 5 rows kept", job, err)
	}
	// Giving up twice changes nothing.
	if err := b.handler.giveUp(ctx, p.Upload, io.ErrUnexpectedEOF); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerLeavesNewerUploadInInbox: a finished job's retry must not move
// a newer upload that replaced the file under the same name.
func TestHandlerLeavesNewerUploadInInbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	first := b.put(t, "inbox/912345602/a.csv", "changes/all-outcomes.csv")
	if err := b.handler.Process(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The corrected file arrives; then the first job's task runs again
	// (a redelivery): it must leave the new upload alone.
	second := b.put(t, "inbox/912345602/a.csv", "changes/third-party.csv")
	if err := b.handler.Process(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := b.objects.Head(ctx, "inbox/912345602/a.csv"); err != nil {
		t.Fatalf("the newer upload was moved out of the inbox: %v", err)
	}
	if err := b.handler.Process(ctx, second); err != nil {
		t.Fatal(err)
	}
	rows := receiptRows(t, b.get(t, "receipts/912345602/a.csv.receipt.csv"))
	if len(rows) != 4 {
		t.Errorf("receipt of the newer upload has %d rows, want 4", len(rows))
	}
}

// failingPuts fails every object write, as an S3 outage would.
type failingPuts struct{ objectStore }

func (failingPuts) Put(context.Context, string, io.ReadSeeker, int64, string) error {
	return io.ErrUnexpectedEOF
}

// TestHandlerGiveUpAfterAllRowsPublishesFullReceipt: when every row has its
// result and only publishing failed, giving up publishes the full receipt.
func TestHandlerGiveUpAfterAllRowsPublishesFullReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	p := b.put(t, "inbox/912345602/all-outcomes.csv", "changes/all-outcomes.csv")
	objects := b.handler.objects
	b.handler.objects = failingPuts{objects}
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("expected the publish to fail")
	}
	b.handler.objects = objects
	if err := b.handler.giveUp(ctx, p.Upload, io.ErrUnexpectedEOF); err != nil {
		t.Fatal(err)
	}
	summary := string(b.get(t, "receipts/912345602/all-outcomes.csv.summary.json"))
	if !strings.Contains(summary, `"status": "completed"`) {
		t.Errorf("summary = %s; want completed", summary)
	}
	if rows := receiptRows(t, b.get(t, "receipts/912345602/all-outcomes.csv.receipt.csv")); len(rows) != 22 {
		t.Errorf("receipt has %d rows, want 22", len(rows))
	}
}
