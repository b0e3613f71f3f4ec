package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

var _ ExportStore = (*sqlstore.Store)(nil)

// fakeExportQueue is an Asynq queue as the scheduler sees it: one task per
// task id until the task is run.
type fakeExportQueue struct {
	mu      sync.Mutex
	pending map[string]*asynq.Task
	order   []string
	// conflict, if set, answers every enqueue with a task id conflict.
	conflict bool
}

func (q *fakeExportQueue) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	var p ExportPayload
	if err := json.Unmarshal(task.Payload(), &p); err != nil {
		return nil, err
	}
	id := ExportTaskID(p.OrgNr)
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pending[id]; ok || q.conflict {
		return nil, asynq.ErrTaskIDConflict
	}
	if q.pending == nil {
		q.pending = map[string]*asynq.Task{}
	}
	q.pending[id] = task
	q.order = append(q.order, id)
	return &asynq.TaskInfo{ID: id, Queue: QueueExports}, nil
}

// runAll runs every pending task through h, as the export queue's worker
// would, and removes it.
func (q *fakeExportQueue) runAll(t *testing.T, h asynq.Handler) {
	t.Helper()
	q.mu.Lock()
	order, pending := q.order, q.pending
	q.order, q.pending = nil, nil
	q.mu.Unlock()
	for _, id := range order {
		if err := h.ProcessTask(context.Background(), pending[id]); err != nil {
			t.Fatalf("export task %s: %v", id, err)
		}
	}
}

// recordingPuts records the exports stored.
type recordingPuts struct {
	mu   sync.Mutex
	puts []string // key of each Put
	last map[string][]byte
}

func (r *recordingPuts) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.puts = append(r.puts, key)
	if r.last == nil {
		r.last = map[string][]byte{}
	}
	r.last[key] = b
	return nil
}

func (r *recordingPuts) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.puts)
}

// exportRig is a store with the demo registry, a scheduler and handler
// over it, on one fake clock.
type exportRig struct {
	store   *sqlstore.Store
	clock   *testClock
	queue   *fakeExportQueue
	puts    *recordingPuts
	sched   *ExportScheduler
	handler *ExportHandler
}

func newExportRig(t *testing.T, store *sqlstore.Store) *exportRig {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 3, 15, 11, 0, 0, 0, time.UTC)}
	store.Now = clock.Now
	setup(t, store) // imports the demo registry, which marks its fleets changed
	r := &exportRig{store: store, clock: clock, queue: &fakeExportQueue{}, puts: &recordingPuts{}}
	log := slog.New(slog.DiscardHandler)
	r.sched = NewExportScheduler(store, r.queue, ExportSchedule{}, log)
	r.sched.Now = clock.Now
	w := export.New(store, r.puts, export.Config{TempDir: t.TempDir(), Now: clock.Now})
	r.handler = NewExportHandler(w, store, log)
	return r
}

// tick runs one scheduler tick and the tasks it enqueued.
func (r *exportRig) tick(t *testing.T) int {
	t.Helper()
	n, err := r.sched.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.queue.runAll(t, r.handler)
	return n
}

const exportFleet = "912345602"

// TestExportDebounce: 1,000 changes to one fleet give a handful of
// exports, the last of them including every change, within a minute of
// it; a burst within one tick gives one.
func TestExportDebounce(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		r := newExportRig(t, store)
		interval := DefaultExportSchedule().Interval
		// The import's marks: every demo fleet owner's export, once.
		if n := r.tick(t); n != 4 {
			t.Fatalf("first tick after the import enqueued %d exports, want 4 (the demo fleet owners)", n)
		}
		if n := r.tick(t); n != 0 {
			t.Fatalf("second tick enqueued %d exports", n)
		}
		r.puts.mu.Lock()
		r.puts.puts = nil
		r.puts.mu.Unlock()
		r.clock.Add(time.Minute)

		// 1,000 changes in one minute, one every 60 ms; the scheduler
		// ticks every 10 s, each tick's tasks run at once.
		start := r.clock.Now()
		nextTick := start.Add(interval)
		var exportTimes []time.Duration
		for range 1000 {
			if err := store.MarkFleetChanged(ctx, exportFleet); err != nil {
				t.Fatal(err)
			}
			r.clock.Add(60 * time.Millisecond)
			for !r.clock.Now().Before(nextTick) {
				if r.tick(t) > 0 {
					exportTimes = append(exportTimes, r.clock.Now().Sub(start))
				}
				nextTick = nextTick.Add(interval)
			}
		}
		lastChange := r.clock.Now()
		for range 6 {
			r.clock.Add(interval)
			if r.tick(t) > 0 {
				exportTimes = append(exportTimes, r.clock.Now().Sub(start))
			}
		}
		n := r.puts.count()
		t.Logf("1,000 changes over 60 s: %d exports, at %v after the first change", n, exportTimes)
		if n < 2 || n > 6 {
			t.Errorf("%d exports for 1,000 changes in a minute, want a handful (2 to 6)", n)
		}
		last := exportTimes[len(exportTimes)-1]
		if after := start.Add(last).Sub(lastChange); after > time.Minute {
			t.Errorf("last export %s after the last change", after)
		}
		list, err := store.DueExports(ctx, r.clock.Now(), r.clock.Now())
		if err != nil || len(list) != 0 {
			t.Errorf("still due after the burst: %v, %v", list, err)
		}

		// A burst between two ticks: one export.
		r.clock.Add(time.Minute)
		before := r.puts.count()
		for range 1000 {
			if err := store.MarkFleetChanged(ctx, exportFleet); err != nil {
				t.Fatal(err)
			}
			r.clock.Add(time.Millisecond)
		}
		for range 6 {
			r.clock.Add(interval)
			r.tick(t)
		}
		if n := r.puts.count() - before; n != 1 {
			t.Errorf("1,000 changes within a second gave %d exports, want 1", n)
		}
		got := string(r.puts.last[objectkey.Export(exportFleet)])
		if !strings.HasPrefix(got, strings.Join(export.Header, ",")+"\n") || strings.Count(got, "\n") != 12 {
			t.Errorf("export of %s:\n%s", exportFleet, got)
		}
	})
}

// archivedExports answers as an Inspector whose export task is archived.
type archivedExports struct {
	deleted []string
}

func (a *archivedExports) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{ID: id, Queue: queue, State: asynq.TaskStateArchived, LastErr: "s3 down"}, nil
}

func (a *archivedExports) DeleteTask(queue, id string) error {
	a.deleted = append(a.deleted, queue+"/"+id)
	return nil
}

// dueList is a dueExports with a fixed answer.
type dueList []lessee.DueExport

func (d dueList) DueExports(context.Context, time.Time, time.Time) ([]lessee.DueExport, error) {
	return d, nil
}

func (d dueList) AgeExports(context.Context, time.Time) (int, error) { return 0, nil }

// conflictOnce conflicts on its first enqueue only.
type conflictOnce struct {
	calls int
}

func (c *conflictOnce) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	c.calls++
	if c.calls == 1 {
		return nil, asynq.ErrTaskIDConflict
	}
	return &asynq.TaskInfo{}, nil
}

func TestExportSchedulerReplacesArchivedTask(t *testing.T) {
	t.Parallel()
	q := &conflictOnce{}
	s := NewExportScheduler(dueList{{OrgNr: exportFleet, Version: 3}}, q, ExportSchedule{}, slog.New(slog.DiscardHandler))
	a := &archivedExports{}
	s.RecoverArchived(a)
	n, err := s.Tick(context.Background())
	if err != nil || n != 1 || q.calls != 2 || len(a.deleted) != 1 || a.deleted[0] != QueueExports+"/export:"+exportFleet {
		t.Errorf("Tick = %d, %v; enqueues %d, deleted %v", n, err, q.calls, a.deleted)
	}
	// Without an inspector a conflict is a task queued or running.
	s = NewExportScheduler(dueList{{OrgNr: exportFleet, Version: 3}}, &fakeExportQueue{conflict: true}, ExportSchedule{}, slog.New(slog.DiscardHandler))
	if n, err := s.Tick(context.Background()); n != 0 || err != nil {
		t.Errorf("Tick with a task queued = %d, %v", n, err)
	}
}

func TestExportHandlerBadPayload(t *testing.T) {
	t.Parallel()
	h := NewExportHandler(export.New(nil, nil, export.Config{}), nil, slog.New(slog.DiscardHandler))
	for _, payload := range []string{`{`, `{"orgnr":"912345603","version":1}`, `{"orgnr":"../x"}`} {
		err := h.ProcessTask(context.Background(), asynq.NewTask(TypeExportFleet, []byte(payload)))
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("payload %s: err = %v, want SkipRetry", payload, err)
		}
	}
}

// TestServeWritesExports runs Serve on Redis (in-process), SQLite and the
// embedded S3 endpoint: the demo registry's import makes every fleet's
// export due, and the export queue writes them.
func TestServeWritesExports(t *testing.T) {
	t.Parallel()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultServerConfig()
	cfg.ShutdownTimeout = time.Second
	cfg.ResumeAfter = 0
	cfg.Exports = ExportSchedule{Interval: 50 * time.Millisecond, Quiet: 50 * time.Millisecond, MaxWait: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, redis, b.handler, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	key := objectkey.Export(exportFleet)
	waitForKey(t, b.objects, key, 30*time.Second)
	got := string(b.get(t, key))
	if !strings.HasPrefix(got, "registration_number,vin,lessee_id,lessee_name,start_date,end_date\nEL10001,") ||
		strings.Count(got, "\n") != 12 || !strings.Contains(got, "\nEL10002,WVWZZZ1KZAW000002,15038512363,,2025-01-01,\n") {
		t.Errorf("export:\n%s", got)
	}
	// A change is exported again, and then nothing is due.
	if err := store.MarkFleetChanged(ctx, exportFleet); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := store.DueExports(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exports still due after 30 s: %v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var buf bytes.Buffer
	if _, err := b.objects.Download(ctx, objectkey.Export("912345610"), "", &buf); err != nil {
		t.Errorf("the other fleet's export: %v", err)
	}
}
