package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/storage/s3store"
)

// lister lists objects under a prefix.
type lister interface {
	List(ctx context.Context, prefix string, fn func(s3store.Object) error) error
}

// archive finds and removes archived tasks.
type archive interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
}

// enqueuer puts tasks on the queue.
type enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Scanner periodically lists inbox/ and enqueues a task for every object
// version found. Re-enqueueing is harmless: the task id is the job id, so
// Asynq refuses a duplicate while the first is queued, running or retained,
// and a finished job only has its source moved. After a restart with an
// empty Redis the scan is what resumes unfinished files.
type Scanner struct {
	objects  lister
	queue    enqueuer
	bucket   string
	opt      Options
	interval time.Duration
	log      *slog.Logger
	archive  archive
	redis    redis.UniversalClient
}

// RepairWith lets the scan repair what a Redis that lost its data leaves
// behind (see retryArchived). It relies on Asynq's key layout, which has
// been stable across its releases.
func (s *Scanner) RepairWith(rc redis.UniversalClient) { s.redis = rc }

// dropStub deletes a task hash that holds no task message. A handler still
// running when Redis lost its data recreates the hash with its progress
// write (HSET result); the stub then blocks the task id for good.
var dropStub = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 and redis.call("HEXISTS", KEYS[1], "msg") == 0 then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0`)

// RecoverArchived lets the scan re-enqueue a file whose task Asynq archived
// while the file is still in the inbox. That happens when a task's lease
// expired on every attempt (the worker process died each time), so the
// handler never ran to move the file to failed/; without this the archived
// task id would block the file for good.
func (s *Scanner) RecoverArchived(a archive) { s.archive = a }

// NewScanner returns a scanner of bucket's inbox.
func NewScanner(objects lister, queue enqueuer, bucket string, opt Options, interval time.Duration, log *slog.Logger) *Scanner {
	return &Scanner{objects: objects, queue: queue, bucket: bucket, opt: opt, interval: interval, log: log}
}

// Run scans at once and then every interval until ctx is done. Failed scans
// are logged and retried at the next tick.
func (s *Scanner) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if n, err := s.ScanOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("inbox scan failed", "err", err)
		} else if n > 0 {
			s.log.Info("inbox scan enqueued files", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScanOnce lists the inbox once and returns how many new tasks it enqueued.
// Each submitter gets at most MaxPerSubmitter of its oldest files queued;
// files finish and leave the inbox, so the next scans queue the rest.
func (s *Scanner) ScanOnce(ctx context.Context) (int, error) {
	bySubmitter := map[string][]s3store.Object{}
	var order []string
	err := s.objects.List(ctx, InboxPrefix, func(o s3store.Object) error {
		if strings.HasSuffix(o.Key, "/") {
			return nil // a folder marker some clients create
		}
		// Keys that name no valid submitter share one lane under "".
		sub := ParseKey(o.Key).Submitter
		if _, seen := bySubmitter[sub]; !seen {
			order = append(order, sub)
		}
		bySubmitter[sub] = append(bySubmitter[sub], o)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("scan inbox: %w", err)
	}
	// Round-robin over submitters, oldest file first: a newcomer's file is
	// queued before a flooding submitter's next one.
	var lanes [][]s3store.Object
	for _, sub := range order {
		files := bySubmitter[sub]
		sort.SliceStable(files, func(i, j int) bool { return files[i].LastModified.Before(files[j].LastModified) })
		if n := s.opt.MaxPerSubmitter; n > 0 && len(files) > n {
			files = files[:n]
		}
		lanes = append(lanes, files)
	}
	var next []s3store.Object
	for round := 0; ; round++ {
		n := len(next)
		for _, files := range lanes {
			if round < len(files) {
				next = append(next, files[round])
			}
		}
		if len(next) == n {
			break
		}
	}
	if s.redis != nil {
		// The Asynq client registers a queue only on its first enqueue per
		// process; after Redis lost its data asynqmon would not list it.
		if err := s.redis.SAdd(ctx, "asynq:queues", QueueSmall, QueueLarge).Err(); err != nil {
			return 0, fmt.Errorf("scan inbox: register queues: %w", err)
		}
	}
	enqueued := 0
	for _, o := range next {
		p := IngestPayload{
			Bucket: s.bucket, Key: o.Key, ETag: o.ETag, Size: o.Size,
			Version: VersionOf(o),
		}
		ok, err := Enqueue(ctx, s.queue, p, s.opt)
		if err == nil && !ok && s.archive != nil {
			ok, err = s.retryArchived(ctx, p)
		}
		if err != nil {
			return enqueued, fmt.Errorf("scan inbox: %w", err)
		}
		if ok {
			enqueued++
		}
	}
	return enqueued, nil
}

// retryArchived re-enqueues p if its task was archived (see
// RecoverArchived) or lost with Redis's data (see RepairWith).
func (s *Scanner) retryArchived(ctx context.Context, p IngestPayload) (bool, error) {
	queue, id := QueueFor(p.Size, s.opt), JobID(p.Bucket, p.Key, p.Version)
	if s.redis != nil {
		n, err := dropStub.Run(ctx, s.redis, []string{"asynq:{" + queue + "}:t:" + id}).Int()
		if err != nil {
			return false, fmt.Errorf("check task %s: %w", id, err)
		}
		if n == 1 {
			s.log.Warn("file's task was lost with Redis's data; enqueueing it again", "job_id", id, "key", p.Key)
			return Enqueue(ctx, s.queue, p, s.opt)
		}
	}
	info, err := s.archive.GetTaskInfo(queue, id)
	if err != nil || info.State != asynq.TaskStateArchived {
		return false, nil // queued, running, retrying or retained: leave it
	}
	if s.redis != nil {
		key := "lessee:recovered:" + id
		n, err := s.redis.Incr(ctx, key).Result()
		if err != nil {
			return false, fmt.Errorf("count recoveries of %s: %w", id, err)
		}
		s.redis.Expire(ctx, key, 7*24*time.Hour)
		p.GiveUp = n > maxRecoveries
	}
	s.log.Warn("file's task was archived while the file is still in the inbox; enqueueing it again",
		"job_id", id, "key", p.Key, "last_error", info.LastErr, "give_up", p.GiveUp)
	if err := s.archive.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return false, fmt.Errorf("delete archived task %s: %w", id, err)
	}
	return Enqueue(ctx, s.queue, p, s.opt)
}

// maxRecoveries is how often the scan gives an archived file's task a new
// set of retries before it has the handler record the file as failed.
const maxRecoveries = 2

// Enqueue enqueues the task of one object version. It reports false when
// the task already exists (the same upload seen before).
func Enqueue(ctx context.Context, q enqueuer, p IngestPayload, opt Options) (bool, error) {
	task, err := NewIngestFileTask(p, opt)
	if err != nil {
		return false, err
	}
	_, err = q.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("enqueue %s: %w", p.Key, err)
	}
	return true, nil
}
