package worker

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// stallingStore applies chunks until the checkpoint reaches stallAt, then
// holds every later chunk until its context ends: a file that is always
// mid-way when the test stops the worker.
type stallingStore struct {
	Store
	stallAt int
}

func (s stallingStore) ApplyChunkInTurn(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys,
	decide func(*lessee.State) lessee.Decision, turn lessee.ChunkTurn) error {
	if checkpoint >= s.stallAt {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.ApplyChunkInTurn(ctx, jobID, checkpoint, keys, decide, turn)
}

// TestServeStopsInStages: once its context is done Serve takes no more
// tasks and reports the file it waits for and how far it came; it keeps
// waiting (the file is not cut off at once) until StopNow, then puts the
// file's task back in its queue with no attempt counted, and reports it
// cut off. The attempt being the file's last, the cut must not give up on
// the file either. Served again, the file resumes from its checkpoint and
// completes.
func TestServeStopsInStages(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstoretest.SQLite(t))
	b.handler.cfg.ChunkSize = 1
	b.handler.store = stallingStore{Store: b.store, stallAt: 5}
	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	client := asynq.NewClient(redis)
	defer client.Close()
	insp := asynq.NewInspector(redis)
	defer insp.Close()

	p := b.put(t, "inbox/912345602/slow.csv", "changes/all-outcomes.csv")
	opt := DefaultOptions()
	opt.MaxRetry = 0 // this attempt is the file's last
	task, err := NewIngestFileTask(p, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	jobID := intake.JobID(p.Bucket, p.Key, p.Version)

	var mu sync.Mutex
	var stopping, cut []Running
	var waited time.Duration
	stoppingCalled := make(chan struct{})
	stopNow := make(chan struct{})
	cfg := DefaultServerConfig()
	cfg.ShutdownTimeout = time.Minute
	cfg.StopNow = stopNow
	cfg.Stopping = func(r []Running, timeout time.Duration) {
		mu.Lock()
		stopping, waited = r, timeout
		mu.Unlock()
		close(stoppingCalled)
	}
	cfg.Stopped = func(c []Running) { mu.Lock(); cut = c; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, redis, b.handler, cfg, slog.New(slog.DiscardHandler)) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if r := b.handler.Running(); len(r) == 1 && r[0].RowsDone == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file did not reach its stall within 30 s: %+v", b.handler.Running())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-stoppingCalled:
	case <-time.After(10 * time.Second):
		t.Fatal("Stopping not called within 10 s of the context's end")
	}
	mu.Lock()
	want := Running{JobID: jobID, Key: p.Key, RowsDone: 5, RowsTotal: 22}
	if len(stopping) != 1 || stopping[0] != want || waited != time.Minute {
		t.Errorf("Stopping(%+v, %s), want [%+v], 1m0s", stopping, waited, want)
	}
	mu.Unlock()
	select {
	case err := <-served:
		t.Fatalf("Serve returned before its timeout or StopNow: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(stopNow)
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5 s after StopNow")
	}
	mu.Lock()
	if len(cut) != 1 || cut[0] != want {
		t.Errorf("Stopped(%+v), want [%+v]", cut, want)
	}
	mu.Unlock()
	ti, err := insp.GetTaskInfo(QueueSmall, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if ti.State != asynq.TaskStatePending || ti.Retried != 0 {
		t.Errorf("task after the stop: %v, retried %d; want pending, 0", ti.State, ti.Retried)
	}
	receipts := objectkey.ReceiptsFor("912345602", "slow.csv", false)
	if b.has(t, receipts.Summary) {
		t.Error("the cut-off attempt gave up on the file")
	}
	if job := b.jobFor(t, p); job.State != lessee.JobRunning || job.RowsDone != 5 {
		t.Errorf("job after the stop: %s at %d, want running at its checkpoint 5", job.State, job.RowsDone)
	}

	// Served again, it resumes from row 5 and completes.
	b.handler.store = b.store
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	cfg2 := DefaultServerConfig()
	cfg2.ShutdownTimeout = time.Second
	go func() { served <- Serve(ctx2, redis, b.handler, cfg2, slog.New(slog.DiscardHandler)) }()
	deadline = time.Now().Add(30 * time.Second)
	for !b.has(t, receipts.Summary) {
		if time.Now().After(deadline) {
			t.Fatal("no summary within 30 s of serving again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	<-served
	if job := b.jobFor(t, p); job.State != lessee.JobCompleted || job.RowsDone != 22 || job.Applied+job.Unchanged+job.Rejected != 22 {
		t.Errorf("job after serving again: %+v", job)
	}
}
