package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Resumer hands the file of a worker that stopped sending heartbeats (its
// process was killed, its machine lost) back to the queue, so that another
// worker resumes it from its last committed chunk. Asynq does this on its
// own only when a lease has been expired for 30 s, checked once a minute:
// 60 to 120 s after the kill. The Resumer checks every few seconds and acts
// once the lease has not been renewed for After, a setting.
//
// It moves the task exactly as Asynq's own recovery does (to the retry set,
// one attempt counted, so that a file that kills its worker every time
// still runs out of attempts), in one script that first checks that the
// lease was not renewed meanwhile: any number of processes may run one.
// A task with no attempts left is left to Asynq's recovery, which archives
// it.
type Resumer struct {
	redis  redis.UniversalClient
	after  time.Duration
	queues []string
	log    *slog.Logger
	now    func() time.Time
}

// NewResumer returns a Resumer of the tasks of queues whose lease was last
// renewed more than after ago. Asynq renews leases with its heartbeat every
// 5 s, in whole seconds: after must be well above 6 s, or a live worker's
// file is handed to a second worker (its rows still apply once, by the
// chunk checkpoint, but both work on it).
func NewResumer(rc redis.UniversalClient, after time.Duration, log *slog.Logger, queues ...string) *Resumer {
	return &Resumer{redis: rc, after: after, queues: queues, log: log, now: time.Now}
}

// CheckInterval is how often Run looks: a tenth of After, between 1 and 5 s.
func (r *Resumer) CheckInterval() time.Duration {
	return min(max(r.after/10, time.Second), 5*time.Second)
}

// Run checks every CheckInterval until ctx is done.
func (r *Resumer) Run(ctx context.Context) {
	t := time.NewTicker(r.CheckInterval())
	defer t.Stop()
	for {
		if _, err := r.Resume(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("resuming files of stopped workers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Resume hands back every task whose lease is overdue and reports how many
// it handed back.
func (r *Resumer) Resume(ctx context.Context) (int, error) {
	now := r.now()
	// Asynq keeps lease expiries in whole seconds.
	cutoff := now.Add(asynqLeaseDuration - r.after).Unix()
	n := 0
	var errs []error
	for _, q := range r.queues {
		ids, err := r.redis.ZRangeByScore(ctx, asynqLeaseKey(q), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(cutoff, 10)}).Result()
		if err != nil {
			errs = append(errs, fmt.Errorf("list leases of %s: %w", q, err))
			continue
		}
		for _, id := range ids {
			ok, err := r.resume(ctx, q, id, cutoff, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// resume hands back task id of queue q, if it is still overdue.
func (r *Resumer) resume(ctx context.Context, q, id string, cutoff int64, now time.Time) (bool, error) {
	old, err := r.redis.HGet(ctx, asynqTaskKey(q, id), "msg").Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil // finished meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("read task %s: %w", id, err)
	}
	silent := now.Sub(time.Unix(cutoff, 0).Add(-asynqLeaseDuration)).Round(time.Second)
	reason := fmt.Sprintf("worker stopped: no heartbeat for %s; resumed by another worker", silent)
	msg, retried, retry, err := countAttempt(old, reason, now)
	if err != nil {
		return false, fmt.Errorf("task %s: %w", id, err)
	}
	if retried > retry {
		return false, nil // no attempt left: Asynq's recovery archives it
	}
	at := now.Add(RetryDelay(retried-1, asynq.ErrLeaseExpired, nil))
	moved, err := resumeScript.Run(ctx, r.redis,
		[]string{asynqTaskKey(q, id), asynqActiveKey(q), asynqLeaseKey(q), asynqRetryKey(q)},
		id, cutoff, msg, at.Unix(), old).Int()
	if err != nil {
		return false, fmt.Errorf("resume task %s: %w", id, err)
	}
	if moved == 1 {
		r.log.Warn("file's worker stopped sending heartbeats; handing the file to another worker",
			"job_id", id, "queue", q, "silent_ms", silent.Milliseconds(), "attempt", retried+1)
	}
	return moved == 1, nil
}
