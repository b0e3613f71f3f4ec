package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
)

// ServerConfig sizes the worker pools.
type ServerConfig struct {
	SmallConcurrency int           // workers for QueueSmall
	LargeConcurrency int           // workers for QueueLarge
	ShutdownTimeout  time.Duration // how long running tasks get to finish on stop
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

// Serve runs the task handler, wrapped in its middleware, until ctx is done. Each queue gets its own
// Asynq server, so large files can never occupy the workers small files
// need; a shutdown waits up to ShutdownTimeout for running tasks, and a task
// cut off resumes from its last committed chunk when retried.
func Serve(ctx context.Context, redis asynq.RedisConnOpt, h *Handler, cfg ServerConfig, log *slog.Logger) error {
	mux := asynq.NewServeMux()
	// The first middleware is the outermost: Classify sees the handler's
	// own errors, Mask what Classify returns.
	mux.Use(Mask, h.Classify)
	mux.HandleFunc(TypeIngestFile, h.processTask)
	var servers []*asynq.Server
	for queue, n := range map[string]int{QueueSmall: cfg.SmallConcurrency, QueueLarge: cfg.LargeConcurrency} {
		srv := asynq.NewServer(redis, asynq.Config{
			Concurrency:     max(n, 1),
			Queues:          map[string]int{queue: 1},
			ShutdownTimeout: cfg.ShutdownTimeout,
			RetryDelayFunc:  RetryDelay,
			// A retry is due after 1 s at first; Asynq's default 5 s check
			// would add up to 5 s to every resume after an outage or a kill.
			DelayedTaskCheckInterval: time.Second,
			Logger:                   asynqLogger{log.With("queue", queue)},
			LogLevel:                 asynq.WarnLevel,
		})
		if err := srv.Start(mux); err != nil {
			for _, s := range servers {
				s.Shutdown()
			}
			return fmt.Errorf("start %s queue worker: %w", queue, err)
		}
		servers = append(servers, srv)
	}
	stopExports, err := startExports(ctx, redis, h, cfg, log)
	if err != nil {
		for _, s := range servers {
			s.Shutdown()
		}
		return err
	}
	defer stopExports()
	if cfg.ResumeAfter > 0 {
		rc, ok := redis.MakeRedisClient().(goredis.UniversalClient)
		if !ok {
			return fmt.Errorf("redis connection of type %T has no client to resume tasks with", redis)
		}
		resumed := make(chan struct{})
		go func() {
			defer close(resumed)
			NewResumer(rc, cfg.ResumeAfter, log, QueueSmall, QueueLarge).Run(ctx)
		}()
		defer func() { <-resumed; _ = rc.Close() }()
	}
	<-ctx.Done()
	for _, s := range servers {
		s.Shutdown()
	}
	return nil
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
