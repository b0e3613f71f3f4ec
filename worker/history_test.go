package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// jobFor returns the stored job of payload p.
func (b *testBundle) jobFor(t *testing.T, p IngestPayload) lessee.Job {
	t.Helper()
	j, err := b.store.Job(context.Background(), intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// has reports whether key exists in the bucket.
func (b *testBundle) has(t *testing.T, key string) bool {
	t.Helper()
	_, err := b.objects.Head(context.Background(), key)
	if err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		t.Fatal(err)
	}
	return err == nil
}

// TestHistoryKeepsEveryJobsReceipt: a second upload under the name of the
// first takes the latest receipt keys, and the first job's receipt and
// summary stay in its history folder, byte for byte, named by its summary.
func TestHistoryKeepsEveryJobsReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	const key = "inbox/912345602/lessees.csv"
	first := b.put(t, key, "changes/all-outcomes.csv")
	if err := b.handler.Process(ctx, first); err != nil {
		t.Fatal(err)
	}
	j1 := b.jobFor(t, first)
	h1 := objectkey.HistoryFor(j1.Submitter, j1.ID, j1.Name, false)
	if j1.History != objectkey.HistoryOf(j1.Submitter, j1.ID) {
		t.Fatalf("first job's history = %q", j1.History)
	}
	receipt1, summary1 := b.get(t, h1.CSV), b.get(t, h1.Summary)
	if !bytes.Equal(b.get(t, "receipts/912345602/lessees.csv.receipt.csv"), receipt1) {
		t.Error("the latest receipt is not the first job's")
	}
	if !strings.Contains(string(summary1), `"summary": "`+h1.Summary+`"`) {
		t.Errorf("the summary does not name its history: %s", summary1)
	}

	b.s3Clock.Add(2 * time.Second) // a new upload, a new version
	second := b.put(t, key, "changes/missing-column.csv")
	if err := b.handler.Process(ctx, second); err != nil {
		t.Fatal(err)
	}
	j2 := b.jobFor(t, second)
	if j2.ID == j1.ID || j2.State != lessee.JobRefused {
		t.Fatalf("second job %s %s", j2.ID, j2.State)
	}
	if got := b.get(t, "receipts/912345602/lessees.csv.summary.json"); !strings.Contains(string(got), `"job_id": "`+j2.ID+`"`) {
		t.Errorf("the latest summary is not the second job's: %s", got)
	}
	if !bytes.Equal(b.get(t, h1.CSV), receipt1) || !bytes.Equal(b.get(t, h1.Summary), summary1) {
		t.Error("the first job's history receipt changed after the second upload")
	}
	if b.has(t, objectkey.StagingOf(j1.ID, 1)+"lessees.csv.summary.json") {
		t.Error("the staged receipts stayed behind")
	}
}

// TestNewestUploadOwnsTheLatestReceipt: when the older of two uploads under
// one name finishes last, the latest keys still show the newer one's.
func TestNewestUploadOwnsTheLatestReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	const key = "inbox/912345602/lessees.csv"
	older := b.put(t, key, "changes/all-outcomes.csv")
	b.s3Clock.Add(2 * time.Second)
	newer := b.put(t, key, "changes/third-party.csv")
	if err := b.handler.Process(ctx, newer); err != nil {
		t.Fatal(err)
	}
	// The older upload's task runs late: its bytes are gone, and its job
	// ends with a receipt of its own that says so.
	if err := b.handler.Process(ctx, older); err != nil {
		t.Fatal(err)
	}
	jo, jn := b.jobFor(t, older), b.jobFor(t, newer)
	if jo.State != lessee.JobRefused || jo.Code != lessee.CodeProcessingFailed || jo.History == "" {
		t.Errorf("older job %s %s, history %q", jo.State, jo.Code, jo.History)
	}
	if got := b.get(t, "receipts/912345602/lessees.csv.summary.json"); !strings.Contains(string(got), `"job_id": "`+jn.ID+`"`) {
		t.Errorf("the latest summary is not the newer upload's: %s", got)
	}
	newerBytes, err := fs.ReadFile(examples.FS(), "changes/third-party.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.get(t, "archive/912345602/lessees.csv"), newerBytes) {
		t.Error("the archive does not hold the newer upload")
	}
}

// TestPinnedBytesSurviveTheSource: a file overwritten, and another deleted,
// after its first attempt died part-way, each end with the receipt of the
// bytes the job started with; the overwriting upload stays in the inbox for
// its own job, and the archive holds the bytes that were processed.
func TestPinnedBytesSurviveTheSource(t *testing.T) {
	t.Parallel()
	original, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(original)
	for _, tc := range []struct {
		name   string
		change func(b *testBundle, key string)
	}{
		{"overwritten", func(b *testBundle, key string) {
			b.s3Clock.Add(2 * time.Second)
			b.put(t, key, "changes/third-party.csv")
		}},
		{"deleted", func(b *testBundle, key string) {
			if err := b.objects.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := sqlstoretest.SQLite(t)
			b := setup(t, store)
			const key = "inbox/912345602/lessees.csv"
			p := b.put(t, key, "changes/all-outcomes.csv")
			// The first attempt dies after two chunks (as a SIGKILL
			// would leave it: committed chunks, no receipt).
			b.handler.store = &failAfter{Store: store, chunks: 2}
			if err := b.handler.Process(ctx, p); err == nil {
				t.Fatal("expected the injected failure")
			}
			tc.change(b, key)
			b.handler.store = store
			if err := b.handler.Process(ctx, p); err != nil {
				t.Fatal(err)
			}
			j := b.jobFor(t, p)
			if j.State != lessee.JobCompleted || j.RowsDone != 22 || j.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("job %s, %d rows, sha256 %s; want completed, 22 rows of the original bytes", j.State, j.RowsDone, j.SHA256)
			}
			h := objectkey.HistoryFor(j.Submitter, j.ID, j.Name, false)
			if rows := receiptRows(t, b.get(t, h.CSV)); len(rows) != 22 {
				t.Errorf("receipt has %d rows, want 22", len(rows))
			}
			if got := b.get(t, "archive/912345602/lessees.csv"); !bytes.Equal(got, original) {
				t.Errorf("the archive holds %d bytes, not the %d processed", len(got), len(original))
			}
			if b.has(t, objectkey.PinnedKey(j.ID)) {
				t.Error("the pinned copy stayed behind")
			}
			if tc.name == "overwritten" && !b.has(t, key) {
				t.Error("the overwriting upload was removed from the inbox")
			}
		})
	}
}

// fencedStore holds attempt 1 of a job at its fence until released, so
// that a second attempt can take over and finish first.
type fencedStore struct {
	Store
	arrived, release chan struct{}
}

func (f *fencedStore) FenceAttempt(ctx context.Context, id string, attempt int, code lessee.Code, message string) error {
	if attempt == 1 {
		close(f.arrived)
		<-f.release
	}
	return f.Store.FenceAttempt(ctx, id, attempt, code, message)
}

// TestConcurrentAttemptsPublishOneResult: two attempts of one task run at
// once; the first reaches its finish, the second takes over and finishes;
// the first is then fenced: it publishes nothing, finishes nothing, and
// removes what it staged. Then two attempts started together: one result.
func TestConcurrentAttemptsPublishOneResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	p := b.put(t, "inbox/912345602/lessees.csv", "changes/all-outcomes.csv")
	fenced := &fencedStore{Store: store, arrived: make(chan struct{}), release: make(chan struct{})}
	var finishedJobs []lessee.Job
	var mu sync.Mutex
	newHandler := func(s Store) *Handler {
		h := NewHandler(b.handler.objects, s, b.handler.cfg, slog.New(slog.DiscardHandler))
		h.OnFinished = func(j lessee.Job) { mu.Lock(); finishedJobs = append(finishedJobs, j); mu.Unlock() }
		return h
	}
	first := make(chan error, 1)
	go func() { first <- newHandler(fenced).Process(ctx, p) }()
	<-fenced.arrived
	if err := newHandler(store).Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	j := b.jobFor(t, p)
	latest := b.get(t, "receipts/912345602/lessees.csv.summary.json")
	close(fenced.release)
	if err := <-first; err != nil {
		t.Fatalf("the fenced attempt: %v", err)
	}
	if j.Attempt != 2 || j.PublishedAttempt != 2 || j.State != lessee.JobCompleted {
		t.Errorf("job attempt %d, published %d, %s; want 2, 2, completed", j.Attempt, j.PublishedAttempt, j.State)
	}
	if got := b.get(t, "receipts/912345602/lessees.csv.summary.json"); !bytes.Equal(got, latest) {
		t.Error("the fenced attempt changed the published summary")
	}
	for _, a := range []int{1, 2} {
		if b.has(t, objectkey.StagingOf(j.ID, a)+"lessees.csv.summary.json") || b.has(t, objectkey.StagingOf(j.ID, a)+"lessees.csv.receipt.csv") {
			t.Errorf("attempt %d's staged receipts stayed behind", a)
		}
	}
	if after := b.jobFor(t, p); !after.Finished.Equal(j.Finished) || after.PublishedAttempt != 2 {
		t.Errorf("the fenced attempt finished the job again: %v, published %d", after.Finished, after.PublishedAttempt)
	}
	if len(finishedJobs) != 1 {
		t.Errorf("%d attempts reported the job finished, want 1", len(finishedJobs))
	}
	if audit, _ := store.Audit(ctx, ""); len(audit) != j.Applied {
		t.Errorf("%d audit entries for %d applied rows", len(audit), j.Applied)
	}

	// Two attempts of another upload started together: whatever the
	// interleaving (a chunk's checkpoint or the finish fences one; a
	// fenced chunk is retried, as Asynq would), one result.
	q := b.put(t, "inbox/912345602/other.csv", "changes/all-outcomes.csv")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = newHandler(store).Process(ctx, q) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil { // the retry Asynq would make
			if err := newHandler(store).Process(ctx, q); err != nil {
				t.Fatalf("retry of attempt %d: %v", i, err)
			}
		}
	}
	jq := b.jobFor(t, q)
	if jq.State != lessee.JobCompleted || jq.History == "" {
		t.Fatalf("job %s, history %q", jq.State, jq.History)
	}
	hq := objectkey.HistoryFor(jq.Submitter, jq.ID, jq.Name, false)
	if !bytes.Equal(b.get(t, hq.Summary), b.get(t, "receipts/912345602/other.csv.summary.json")) {
		t.Error("the latest summary is not the job's published one")
	}
	if len(receiptRows(t, b.get(t, hq.CSV))) != 22 || jq.RowsDone != 22 {
		t.Errorf("published receipt of %d rows, job rows done %d; want 22", len(receiptRows(t, b.get(t, hq.CSV))), jq.RowsDone)
	}
	if audit, _ := store.Audit(ctx, ""); len(audit) != j.Applied+jq.Applied {
		t.Errorf("%d audit entries for %d applied rows", len(audit), j.Applied+jq.Applied)
	}
}

// TestHistorySweepRemovesOnlyExpired: with an injected clock, the sweep
// removes the history of jobs finished longer ago than the retention and
// keeps younger ones, including one a minute short of it; sweeping again
// removes nothing more.
func TestHistorySweepRemovesOnlyExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	store.Now, b.handler.Now = clock, clock
	var jobs []lessee.Job
	for i, age := range []time.Duration{0, 30 * 24 * time.Hour} { // finished at start and 30 days later
		now = start.Add(age)
		b.s3Clock.Add(2 * time.Second)
		p := b.put(t, "inbox/912345602/f"+string(rune('a'+i))+".csv", "changes/all-outcomes.csv")
		if err := b.handler.Process(ctx, p); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, b.jobFor(t, p))
	}
	sweeper := &HistorySweeper{Store: store, Objects: b.objects, Retention: 90 * 24 * time.Hour, Log: slog.New(slog.DiscardHandler), Now: clock}
	for _, tc := range []struct {
		at   time.Time
		kept []bool
	}{
		{start.Add(90*24*time.Hour - time.Minute), []bool{true, true}},
		{start.Add(90*24*time.Hour + time.Minute), []bool{false, true}},
		{start.Add(120*24*time.Hour - time.Minute), []bool{false, true}},
		{start.Add(120*24*time.Hour + time.Minute), []bool{false, false}},
	} {
		now = tc.at
		if _, err := sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		for i, j := range jobs {
			h := objectkey.HistoryFor(j.Submitter, j.ID, j.Name, false)
			for _, k := range []string{h.CSV, h.Summary} {
				if b.has(t, k) != tc.kept[i] {
					t.Errorf("at %s: %s present %v, want %v", now.Format(time.DateOnly), k, !tc.kept[i], tc.kept[i])
				}
			}
			if stored, _ := store.Job(ctx, j.ID); stored.HistoryRemoved == tc.kept[i] {
				t.Errorf("at %s: job %d history removed %v", now.Format(time.DateOnly), i, stored.HistoryRemoved)
			}
		}
	}
	// The latest receipts are not the sweep's to remove.
	if !b.has(t, "receipts/912345602/fa.csv.receipt.csv") {
		t.Error("the sweep removed a latest receipt")
	}
}

// failFinishOnce fails the first FinishJob, as a process killed between
// publishing a job's receipts and marking it finished would.
type failFinishOnce struct {
	Store
	failed bool
}

func (f *failFinishOnce) FinishJob(ctx context.Context, id string, state lessee.JobState, code lessee.Code, message string) error {
	if !f.failed {
		f.failed = true
		return context.DeadlineExceeded
	}
	return f.Store.FinishJob(ctx, id, state, code, message)
}

// TestDecidedJobIsCarriedOut: an attempt fenced in and published, then
// killed before the job was marked finished; the next attempt claims
// nothing new, stages nothing, and finishes the job with the receipts
// already published.
func TestDecidedJobIsCarriedOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	p := b.put(t, "inbox/912345602/lessees.csv", "changes/missing-column.csv")
	b.handler.store = &failFinishOnce{Store: store}
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("expected the injected failure")
	}
	j := b.jobFor(t, p)
	if j.State != lessee.JobRunning || j.PublishedAttempt != 1 || j.History == "" {
		t.Fatalf("after the failure: %s, published %d, history %q", j.State, j.PublishedAttempt, j.History)
	}
	published := b.get(t, "receipts/912345602/lessees.csv.summary.json")
	b.handler.store = store
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	j = b.jobFor(t, p)
	if j.State != lessee.JobRefused || j.Code != lessee.CodeMissingColumn || j.Attempt != 1 {
		t.Errorf("job %s %s, attempt %d; want refused MISSING_COLUMN by attempt 1", j.State, j.Code, j.Attempt)
	}
	if !bytes.Equal(b.get(t, "receipts/912345602/lessees.csv.summary.json"), published) {
		t.Error("the summary was published again")
	}
	if b.has(t, "inbox/912345602/lessees.csv") || !b.has(t, "failed/912345602/lessees.csv") {
		t.Error("the refused upload was not moved to failed/")
	}
}

// failNewestOnce fails the first NewestPublished, as a process killed
// between a job's history copy and its latest receipt keys would.
type failNewestOnce struct {
	Store
	failed bool
}

func (f *failNewestOnce) NewestPublished(ctx context.Context, submitter, name string, dryRun bool) (lessee.Job, error) {
	if !f.failed {
		f.failed = true
		return lessee.Job{}, context.DeadlineExceeded
	}
	return f.Store.NewestPublished(ctx, submitter, name, dryRun)
}

// TestLatestShownAfterCrashBetweenCopies: killed after the history copy and
// before the latest keys, the job's next attempt shows its receipt under
// the latest keys and only then marks it finished.
func TestLatestShownAfterCrashBetweenCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	p := b.put(t, "inbox/912345602/lessees.csv", "changes/all-outcomes.csv")
	b.handler.store = &failNewestOnce{Store: store}
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("expected the injected failure")
	}
	if j := b.jobFor(t, p); j.History == "" || j.State == lessee.JobCompleted || b.has(t, "receipts/912345602/lessees.csv.summary.json") {
		t.Fatalf("after the failure: history %q, %s", j.History, j.State)
	}
	b.handler.store = store
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	j := b.jobFor(t, p)
	h := objectkey.HistoryFor(j.Submitter, j.ID, j.Name, false)
	if j.State != lessee.JobCompleted || !bytes.Equal(b.get(t, "receipts/912345602/lessees.csv.summary.json"), b.get(t, h.Summary)) {
		t.Errorf("job %s; the latest summary is not the job's", j.State)
	}
}

// newestGate holds a finisher just after its first NewestPublished read,
// so that a newer upload under the same name can publish in between, as
// two workers finishing at the same moment may.
type newestGate struct {
	Store
	once             sync.Once
	arrived, release chan struct{}
}

func (g *newestGate) NewestPublished(ctx context.Context, submitter, name string, dryRun bool) (lessee.Job, error) {
	j, err := g.Store.NewestPublished(ctx, submitter, name, dryRun)
	g.once.Do(func() {
		close(g.arrived)
		<-g.release
	})
	return j, err
}

// TestConcurrentFinishersShowTheNewest: the older of two uploads under one
// name reads itself as the newest published, the newer upload's job then
// finishes on another worker, and only then does the older one copy its
// receipts to the latest keys. The latest receipt and summary end as the
// newer job's, both of them.
func TestConcurrentFinishersShowTheNewest(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		b := setup(t, store)
		const key = "inbox/912345602/lessees.csv"
		older := b.put(t, key, "changes/all-outcomes.csv")
		gate := &newestGate{Store: store, arrived: make(chan struct{}), release: make(chan struct{})}
		slow := NewHandler(b.handler.objects, gate, b.handler.cfg, slog.New(slog.DiscardHandler))
		done := make(chan error, 1)
		go func() { done <- slow.Process(ctx, older) }()
		select {
		case <-gate.arrived:
		case err := <-done:
			t.Fatalf("the older job finished without reading the newest: %v", err)
		}

		b.s3Clock.Add(2 * time.Second) // a new upload, a new version
		newer := b.put(t, key, "changes/third-party.csv")
		if err := b.handler.Process(ctx, newer); err != nil {
			t.Fatal(err)
		}
		close(gate.release)
		if err := <-done; err != nil {
			t.Fatalf("the older job: %v", err)
		}

		jo, jn := b.jobFor(t, older), b.jobFor(t, newer)
		if jo.State != lessee.JobCompleted || jn.State != lessee.JobCompleted {
			t.Fatalf("older %s, newer %s; want both completed", jo.State, jn.State)
		}
		hn := objectkey.HistoryFor(jn.Submitter, jn.ID, jn.Name, false)
		if got := b.get(t, "receipts/912345602/lessees.csv.summary.json"); !bytes.Equal(got, b.get(t, hn.Summary)) {
			t.Errorf("the latest summary is not the newer job's: %s", got)
		}
		if !bytes.Equal(b.get(t, "receipts/912345602/lessees.csv.receipt.csv"), b.get(t, hn.CSV)) {
			t.Error("the latest receipt is not the newer job's")
		}
	})
}

// bothRead holds each sweeper after its first ExpiredHistories read until
// both have read, so that the two go after the same expired jobs at once,
// as the sweepers of two processes may.
type bothRead struct {
	historyStore
	mu      sync.Mutex
	reads   int
	allRead chan struct{}
}

func (r *bothRead) ExpiredHistories(ctx context.Context, cutoff time.Time, limit int) ([]lessee.Job, error) {
	jobs, err := r.historyStore.ExpiredHistories(ctx, cutoff, limit)
	r.mu.Lock()
	r.reads++
	if r.reads == 2 {
		close(r.allRead)
	}
	r.mu.Unlock()
	select {
	case <-r.allRead:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return jobs, err
}

// TestTwoSweepersAtOnce: two retention sweeps that read the same expired
// jobs and remove them at the same time both end without error; every
// expired history is gone and recorded so, and the younger one stays.
func TestTwoSweepersAtOnce(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := setup(t, store)
		start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		now := start
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
		store.Now, b.handler.Now = clock, clock
		// Four jobs finished a day apart, then one 60 days later.
		var jobs []lessee.Job
		for i, age := range []time.Duration{0, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 60 * 24 * time.Hour} {
			setNow(start.Add(age))
			b.s3Clock.Add(2 * time.Second)
			p := b.put(t, "inbox/912345602/f"+string(rune('a'+i))+".csv", "changes/missing-column.csv")
			if err := b.handler.Process(ctx, p); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, b.jobFor(t, p))
		}
		expired := []bool{true, true, true, true, false}
		setNow(start.Add(100 * 24 * time.Hour)) // past 90 days for the first four only

		shared := &bothRead{historyStore: store, allRead: make(chan struct{})}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := &HistorySweeper{Store: shared, Objects: b.objects, Retention: 90 * 24 * time.Hour,
					Log: slog.New(slog.DiscardHandler), Now: clock}
				_, errs[i] = s.Sweep(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("sweeper %d: %v", i, err)
			}
		}
		if shared.reads < 2 {
			t.Fatalf("the sweepers read %d times; they did not run at once", shared.reads)
		}
		for i, j := range jobs {
			h := objectkey.HistoryFor(j.Submitter, j.ID, j.Name, false)
			for _, k := range []string{h.CSV, h.Summary} {
				if b.has(t, k) == expired[i] {
					t.Errorf("job %d: %s present %v; expired %v", i, k, !expired[i], expired[i])
				}
			}
			if stored, _ := store.Job(ctx, j.ID); stored.HistoryRemoved != expired[i] {
				t.Errorf("job %d: history removed %v, want %v", i, stored.HistoryRemoved, expired[i])
			}
		}
	})
}
