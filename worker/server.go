package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
)

// ServerConfig sizes the worker pools.
type ServerConfig struct {
	SmallConcurrency int // workers for QueueSmall
	LargeConcurrency int // workers for QueueLarge
	// ShutdownTimeout is how long running files get to finish once the
	// context is done; files still running then go back to the queue and
	// resume from their last committed chunk at the next start.
	ShutdownTimeout time.Duration
	// StopNow, when closed while Serve waits for running files, ends the
	// wait at once: they go back to the queue as at the timeout.
	StopNow <-chan struct{}
	// Stopping, if set, is told once the context is done which files the
	// shutdown waits for (none when idle) and for how long at most;
	// Stopped, once they finished or were cut off, which were cut off.
	Stopping func(running []Running, timeout time.Duration)
	Stopped  func(cut []Running)
	// ResumeAfter is how long a running task's worker may go without a
	// heartbeat before its file is handed to another worker (see Resumer);
	// zero leaves it to Asynq's own recovery, 60 to 120 s after the last.
	ResumeAfter time.Duration
	// Exports times the fleet exports (export.go); zero fields take
	// DefaultExportSchedule's, a negative Interval turns them off.
	Exports ExportSchedule
}

// DefaultServerConfig returns defaults for a 2-core machine.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{SmallConcurrency: 2, LargeConcurrency: 1, ShutdownTimeout: 25 * time.Second, ResumeAfter: 30 * time.Second}
}

// abortAfter is how long Asynq's own shutdown waits for a running task
// before it puts the task back in its queue: Serve has done the waiting by
// then (see stop), so a task still running is being cut off.
const abortAfter = 200 * time.Millisecond

// cutOffGrace is how long Serve waits, after Asynq put the cut-off tasks
// back, for their handlers to notice and return (rolling back the chunk
// in hand) before the caller closes the stores they use.
const cutOffGrace = 2 * time.Second

// Serve runs the task handler, wrapped in its middleware, until ctx is
// done. Each queue gets its own Asynq server, so large files can never
// occupy the workers small files need. Then it stops as stop describes.
func Serve(ctx context.Context, redis asynq.RedisConnOpt, h *Handler, cfg ServerConfig, log *slog.Logger) error {
	mux := asynq.NewServeMux()
	// The first middleware is the outermost: Classify sees the handler's
	// own errors, Mask what Classify returns; countActive sees it all.
	mux.Use(h.countActive, Mask, h.Classify)
	mux.HandleFunc(TypeIngestFile, h.processTask)
	var servers []*asynq.Server
	shutdown := func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}
	for queue, n := range map[string]int{QueueSmall: cfg.SmallConcurrency, QueueLarge: cfg.LargeConcurrency} {
		srv := asynq.NewServer(redis, asynq.Config{
			Concurrency:     max(n, 1),
			Queues:          map[string]int{queue: 1},
			ShutdownTimeout: abortAfter,
			RetryDelayFunc:  RetryDelay,
			// A retry is due after 1 s at first; Asynq's default 5 s check
			// would add up to 5 s to every resume after an outage or a kill.
			DelayedTaskCheckInterval: time.Second,
			Logger:                   asynqLogger{log.With("queue", queue)},
			LogLevel:                 asynq.WarnLevel,
		})
		if err := srv.Start(mux); err != nil {
			shutdown()
			return fmt.Errorf("start %s queue worker: %w", queue, err)
		}
		servers = append(servers, srv)
	}
	// An export cut off by a stop is simply run again: its server does not
	// wait for it.
	ecfg := cfg
	ecfg.ShutdownTimeout = abortAfter
	stopExports, err := startExports(ctx, redis, h, ecfg, log)
	if err != nil {
		shutdown()
		return err
	}
	resumed := make(chan struct{})
	close(resumed)
	var rc goredis.UniversalClient
	if cfg.ResumeAfter > 0 {
		var ok bool
		if rc, ok = redis.MakeRedisClient().(goredis.UniversalClient); !ok {
			stopExports()
			shutdown()
			return fmt.Errorf("redis connection of type %T has no client to resume tasks with", redis)
		}
		resumed = make(chan struct{})
		go func() {
			defer close(resumed)
			NewResumer(rc, cfg.ResumeAfter, log, QueueSmall, QueueLarge).Run(ctx)
		}()
	}
	<-ctx.Done()
	stop(h, servers, stopExports, cfg, log)
	<-resumed
	if rc != nil {
		_ = rc.Close() // teardown: the resumer has stopped
	}
	return nil
}

// stop ends Serve: the servers take no more tasks, the files running get
// up to cfg.ShutdownTimeout to finish (or until cfg.StopNow), and those
// still running then are put back in their queue by Asynq (no attempt
// counted) and cut off; they resume from their last committed chunk at
// the next start, or on another worker at once.
func stop(h *Handler, servers []*asynq.Server, stopExports func(), cfg ServerConfig, log *slog.Logger) {
	for _, s := range servers {
		s.Stop()
	}
	// Asynq's shutdowns take up to a second and a half even when idle (a
	// worker sleeps between polls of an empty queue): they run side by side.
	var wg sync.WaitGroup
	wg.Go(stopExports)
	h.running.stopping()
	running := h.Running()
	if len(running) == 0 {
		log.Info("stopping: no file is being processed")
	} else {
		log.Info("stopping: waiting for the files being processed to finish; a second interrupt stops at once, and a file cut off resumes from its last committed chunk at the next start",
			"files", len(running), "timeout", cfg.ShutdownTimeout.String())
		for _, r := range running {
			log.Info("stopping: waiting for file", "job_id", r.JobID, "key", r.Key, "rows_done", r.RowsDone, "rows_total", r.RowsTotal)
		}
	}
	if cfg.Stopping != nil {
		cfg.Stopping(running, cfg.ShutdownTimeout)
	}
	timeout := time.NewTimer(cfg.ShutdownTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(running) > 0 {
		select {
		case <-timeout.C:
		case <-cfg.StopNow:
		case <-tick.C:
			running = h.Running()
			continue
		}
		break
	}
	cut := h.Running()
	for _, s := range servers {
		wg.Go(s.Shutdown) // puts back the tasks of the files in cut
	}
	wg.Wait()
	// Their handlers see their context cancelled and return; a chunk
	// committed meanwhile counts.
	deadline := time.Now().Add(cutOffGrace)
	for h.busy() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cut = h.running.latest(cut)
	for _, r := range cut {
		log.Warn("stopping: file cut off; it resumes from its last committed chunk at the next start",
			"job_id", r.JobID, "key", r.Key, "rows_done", r.RowsDone, "rows_total", r.RowsTotal)
	}
	if cfg.Stopped != nil {
		cfg.Stopped(cut)
	}
}

// RetryDelay is the backoff between attempts of a failed task: 1 s doubling
// to at most 5 minutes, with up to 50% jitter so that tasks failed by one
// outage do not all return at once. Asynq's default starts at 15 s, too
// slow for a database restart of a few seconds.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := time.Second << min(n, 9)
	d = min(d, 5*time.Minute)
	return d + rand.N(d/2+1)
}

// asynqLogger routes Asynq's own log lines into slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
