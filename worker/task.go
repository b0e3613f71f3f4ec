package worker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
)

// TypeIngestFile is the task type that processes one uploaded object version.
const TypeIngestFile = "ingest:file"

// Queue names. Files are put in a queue by size so that small files never
// wait behind large ones: each queue has its own workers.
const (
	QueueSmall = "small"
	QueueLarge = "large"
)

// IngestPayload identifies one object version. It carries ids, never data;
// its JSON keys are those of lessee.Upload plus give_up.
type IngestPayload struct {
	lessee.Upload
	// GiveUp asks the handler to record the file as failed at once: the
	// scan sets it for a file whose task kept being archived (its worker
	// died on every attempt), so one poisonous file cannot occupy the
	// workers for good.
	GiveUp bool `json:"give_up,omitempty"`
}

// Options tune the tasks the scan enqueues.
type Options struct {
	SmallFileBytes int64         // files up to this size go to QueueSmall
	MaxRetry       int           // attempts after the first
	Retention      time.Duration // how long a finished task (and its id) is kept
}

// DefaultOptions returns production defaults.
func DefaultOptions() Options {
	return Options{SmallFileBytes: 1 << 20, MaxRetry: 12, Retention: 24 * time.Hour}
}

// NewIngestFileTask returns the task for one object version with its
// options: the job id as task id (deduplication), queue by size, a timeout
// sized to the file, retries and retention.
func NewIngestFileTask(p IngestPayload, opt Options) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshal ingest payload: %w", err)
	}
	return asynq.NewTask(TypeIngestFile, b,
		asynq.TaskID(intake.JobID(p.Bucket, p.Key, p.Version)),
		asynq.Queue(QueueFor(p.Size, opt)),
		asynq.MaxRetry(opt.MaxRetry),
		asynq.Timeout(TimeoutFor(p.Size)),
		asynq.Retention(opt.Retention),
	), nil
}

// QueueFor returns the queue of a file of size bytes.
func QueueFor(size int64, opt Options) string {
	if size > opt.SmallFileBytes {
		return QueueLarge
	}
	return QueueSmall
}

// TimeoutFor sizes a task's timeout to its file: ten minutes plus two
// minutes per MiB, at most six hours. An attempt re-reads the whole file and
// may have to write the whole receipt, and an XLSX of a few MiB can hold a
// million rows, so this is generous: only a stuck task should time out, and
// a timed-out attempt runs on beside its retry until it notices.
func TimeoutFor(size int64) time.Duration {
	return min(10*time.Minute+time.Duration(size/(1<<20))*2*time.Minute, 6*time.Hour)
}
