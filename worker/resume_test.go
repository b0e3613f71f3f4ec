package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TestResumerHandsBackADeadWorkersTask runs a task on a real Asynq server
// that then loses Redis for good, as a killed worker does, and measures how
// long a second server takes to get the task: the Resumer's setting plus a
// few seconds, where Asynq alone takes 60 to 120 s. The task arrives with
// one attempt counted and the reason as its last error, as Asynq's own
// recovery leaves it; a task with no attempt left and a live worker's task
// are left alone.
func TestResumerHandsBackADeadWorkersTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	direct := asynq.RedisClientOpt{Addr: mr.Addr()}
	client := asynq.NewClient(direct)
	defer client.Close()
	insp := asynq.NewInspector(direct)
	defer insp.Close()
	log := slog.New(slog.DiscardHandler)

	type start struct {
		id      string
		retried int
	}
	started := make(chan start, 10)
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeIngestFile, func(ctx context.Context, task *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		n, _ := asynq.GetRetryCount(ctx)
		started <- start{id, n}
		<-ctx.Done() // runs until its server stops
		return ctx.Err()
	})
	newServer := func(opt asynq.RedisConnOpt) *asynq.Server {
		return asynq.NewServer(opt, asynq.Config{
			Concurrency: 2, Queues: map[string]int{QueueSmall: 1}, ShutdownTimeout: 100 * time.Millisecond,
			RetryDelayFunc: RetryDelay, DelayedTaskCheckInterval: time.Second,
			Logger: asynqLogger{log}, LogLevel: asynq.FatalLevel,
		})
	}

	// The doomed worker reaches Redis through a connection the test cuts.
	link := newCuttableLink(t, mr.Addr())
	doomed := newServer(asynq.RedisClientOpt{Addr: link.addr(), DialTimeout: 200 * time.Millisecond})
	if err := doomed.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer doomed.Shutdown()
	for _, id := range []string{"file-1", "no-attempts-left"} {
		retries := 3
		if id == "no-attempts-left" {
			retries = 0
		}
		if _, err := client.Enqueue(asynq.NewTask(TypeIngestFile, []byte(`{}`)), asynq.TaskID(id),
			asynq.Queue(QueueSmall), asynq.MaxRetry(retries)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case s := <-started:
			if s.retried != 0 {
				t.Fatalf("first attempt of %s has retry count %d", s.id, s.retried)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the doomed worker did not start both tasks")
		}
	}

	// While its worker lives, a task is not handed back however often
	// the Resumer looks. Heartbeats come every 5 s and leases are in
	// whole seconds, so a live lease is up to 6 s old.
	const after = 8 * time.Second
	resumer := NewResumer(rc, after, log, QueueSmall, QueueLarge)
	for range 3 {
		time.Sleep(2 * time.Second)
		if n, err := resumer.Resume(ctx); err != nil || n != 0 {
			t.Fatalf("Resume with the worker alive = %d, %v; want 0", n, err)
		}
	}

	// The worker dies; a second worker and the Resumer carry on.
	link.cut()
	died := time.Now()
	heir := newServer(direct)
	if err := heir.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer heir.Shutdown()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { resumer.Run(runCtx) })
	defer func() { stop(); wg.Wait() }()

	var got start
	select {
	case got = <-started:
	case <-time.After(after + 30*time.Second):
		t.Fatalf("task not resumed within %s of its worker's death", after+30*time.Second)
	}
	waited := time.Since(died)
	t.Logf("resumed %s after the worker died (ResumeAfter %s, check every %s)", waited.Round(10*time.Millisecond), after, resumer.CheckInterval())
	if got.id != "file-1" || got.retried != 1 {
		t.Errorf("resumed %s with retry count %d, want file-1 with 1", got.id, got.retried)
	}
	// The last heartbeat came up to 5 s before the death, the lease is in
	// whole seconds; then one check, the first retry's backoff (up to
	// 1.5 s), the retry check and the worker's poll (1 s each).
	if bound := after + resumer.CheckInterval() + 1500*time.Millisecond + 2*time.Second + time.Second; waited > bound {
		t.Errorf("resumed after %s, want within %s", waited, bound)
	}
	info, err := insp.GetTaskInfo(QueueSmall, "file-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Retried != 1 || !strings.Contains(info.LastErr, "no heartbeat for") || info.LastFailedAt.IsZero() {
		t.Errorf("resumed task: retried %d, last error %q at %s; want 1, the reason and a time", info.Retried, info.LastErr, info.LastFailedAt)
	}
	if string(info.Payload) != `{}` || info.MaxRetry != 3 {
		t.Errorf("resumed task lost fields: payload %q, max retry %d", info.Payload, info.MaxRetry)
	}

	// The task with no attempt left stays for Asynq's recovery to archive.
	info, err = insp.GetTaskInfo(QueueSmall, "no-attempts-left")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateActive {
		t.Errorf("task with no attempt left is %s, want still active", info.State)
	}
	select {
	case s := <-started:
		t.Errorf("%s started again with retry count %d", s.id, s.retried)
	default:
	}
}

// TestCountAttemptKeepsUnknownFields checks the message edit on its own:
// a field Asynq may add later survives, and garbage is an error.
func TestCountAttemptKeepsUnknownFields(t *testing.T) {
	t.Parallel()
	// type "x" (1), retry 5 (5), retried 2 (6), error "old" (7), and
	// field 40, unknown, as a string.
	msg := []byte{0x0a, 1, 'x', 0x28, 5, 0x30, 2, 0x3a, 3, 'o', 'l', 'd', 0xc2, 0x02, 2, 'h', 'i'}
	out, retried, retry, err := countAttempt(msg, "why", time.Unix(1700000000, 0))
	if err != nil || retried != 3 || retry != 5 {
		t.Fatalf("countAttempt = %d, %d, %v; want 3, 5, nil", retried, retry, err)
	}
	if !strings.Contains(string(out), "\xc2\x02\x02hi") || strings.Contains(string(out), "old") || !strings.Contains(string(out), "why") {
		t.Errorf("edited message %q: want field 40 kept, the old error replaced by the new", out)
	}
	if _, _, _, err := countAttempt([]byte{0x0a, 9, 'x'}, "why", time.Now()); err == nil {
		t.Error("a truncated message was accepted")
	}
}

// cuttableLink is a TCP relay to a Redis that the test can cut for good,
// as a worker's death or its machine's loss cuts it.
type cuttableLink struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func newCuttableLink(t *testing.T, to string) *cuttableLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cuttableLink{ln: ln, to: to}
	go l.serve()
	t.Cleanup(l.cut)
	return l
}

func (l *cuttableLink) addr() string { return l.ln.Addr().String() }

func (l *cuttableLink) serve() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", l.to)
		if err != nil {
			in.Close()
			continue
		}
		l.mu.Lock()
		if l.dead {
			l.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		l.conns = append(l.conns, in, out)
		l.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

// cut closes the relay and every connection through it.
func (l *cuttableLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
