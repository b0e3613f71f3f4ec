package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
)

// archive finds and removes archived tasks; *asynq.Inspector satisfies it.
type archive interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
}

// enqueuer puts tasks on the queue; *asynq.Client satisfies it.
type enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Queue is the Asynq queue of ingest tasks, as package intake sees it.
// Enqueueing is idempotent: the task id is the job id, so Asynq refuses a
// duplicate while the first is queued, running or retained, and a finished
// job only has its source moved.
type Queue struct {
	client  enqueuer
	opt     Options
	log     *slog.Logger
	archive archive
	redis   redis.UniversalClient
}

var _ intake.Recoverer = (*Queue)(nil)

// NewQueue returns the queue that client enqueues on.
func NewQueue(client enqueuer, opt Options, log *slog.Logger) *Queue {
	return &Queue{client: client, opt: opt, log: log}
}

// RecoverArchived lets Recover re-enqueue a file whose task Asynq archived
// while the file is still in the inbox. That happens when a task's lease
// expired on every attempt (the worker process died each time), so the
// handler never ran to move the file to failed/; without this the archived
// task id would block the file for good.
func (q *Queue) RecoverArchived(a archive) { q.archive = a }

// RepairWith lets the queue repair what a Redis that lost its data leaves
// behind (see asynqlayout.go).
func (q *Queue) RepairWith(rc redis.UniversalClient) { q.redis = rc }

// Enqueue enqueues the task of one upload. It reports false when the task
// already exists (the same upload seen before).
func (q *Queue) Enqueue(ctx context.Context, u lessee.Upload) (bool, error) {
	task, err := NewIngestFileTask(IngestPayload{Upload: u}, q.opt)
	if err != nil {
		return false, err
	}
	return q.enqueue(ctx, task, u.Key)
}

// enqueue puts task on the queue and reports false when it exists already.
// A new task also registers the queues: the Asynq client does so only on
// its first enqueue per process, so after Redis lost its data asynqmon
// would not list them. Repeats, which every scan makes, cost nothing more.
func (q *Queue) enqueue(ctx context.Context, task *asynq.Task, key string) (bool, error) {
	_, err := q.client.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("enqueue %s: %w", key, err)
	}
	if q.redis != nil {
		if err := registerQueues(ctx, q.redis, QueueSmall, QueueLarge); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Recover re-enqueues u if its task was archived (see RecoverArchived) or
// lost with Redis's data (see RepairWith). It reports false, leaving the
// task alone, when the task is queued, running, retrying or retained.
func (q *Queue) Recover(ctx context.Context, u lessee.Upload) (bool, error) {
	queue, id := QueueFor(u.Size, q.opt), intake.JobID(u.Bucket, u.Key, u.Version)
	if q.redis != nil {
		dropped, err := dropTaskStub(ctx, q.redis, queue, id)
		if err != nil {
			return false, err
		}
		if dropped {
			q.log.Warn("file's task was lost with Redis's data; enqueueing it again", "job_id", id, "key", u.Key)
			return q.Enqueue(ctx, u)
		}
	}
	if q.archive == nil {
		return false, nil
	}
	info, err := q.archive.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return false, nil // finished and gone between the enqueue and now
	case err != nil:
		return false, fmt.Errorf("task info of %s: %w", id, err)
	case info.State != asynq.TaskStateArchived:
		return false, nil
	}
	p := IngestPayload{Upload: u}
	if q.redis != nil {
		n, err := countRecovery(ctx, q.redis, id, 7*24*time.Hour)
		if err != nil {
			return false, err
		}
		p.GiveUp = n > maxRecoveries
	}
	q.log.Warn("file's task was archived while the file is still in the inbox; enqueueing it again",
		"job_id", id, "key", u.Key, "last_error", info.LastErr, "give_up", p.GiveUp)
	if err := q.archive.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return false, fmt.Errorf("delete archived task %s: %w", id, err)
	}
	task, err := NewIngestFileTask(p, q.opt)
	if err != nil {
		return false, err
	}
	return q.enqueue(ctx, task, u.Key)
}

// maxRecoveries is how often the scan gives an archived file's task a new
// set of retries before it has the handler record the file as failed.
const maxRecoveries = 2
