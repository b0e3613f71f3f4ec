package worker

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/storage/s3store"
)

// TypeIngestFile is the task type that processes one uploaded object version.
const TypeIngestFile = "ingest:file"

// Queue names. Files are put in a queue by size so that small files never
// wait behind large ones: each queue has its own workers.
const (
	QueueSmall = "small"
	QueueLarge = "large"
)

// IngestPayload identifies one object version. It carries ids, never data.
type IngestPayload struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
	ETag    string `json:"etag"`
	Size    int64  `json:"size"`
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
	// MaxPerSubmitter caps how many of one submitter's inbox files the
	// scan has queued at once (oldest first), so that one company's flood
	// of files cannot starve another's single file. 0 means no cap.
	MaxPerSubmitter int
}

// DefaultOptions returns production defaults.
func DefaultOptions() Options {
	return Options{SmallFileBytes: 1 << 20, MaxRetry: 12, Retention: 24 * time.Hour, MaxPerSubmitter: 4}
}

// ObjectVersion returns the version that identifies an upload: the S3
// version id when the bucket has versioning, otherwise the ETag and the
// modification time to the second (List and Head report it with different
// precision), so that re-uploading identical bytes is still a new upload.
func ObjectVersion(versionID, etag string, modified time.Time) string {
	if versionID != "" && versionID != "null" {
		return versionID
	}
	return etag + "@" + strconv.FormatInt(modified.UTC().Unix(), 10)
}

// versionETag returns the ETag inside a version made by ObjectVersion, and
// false for an S3 version id.
func versionETag(version string) (string, bool) {
	etag, _, ok := strings.Cut(version, "@")
	return etag, ok && etag != ""
}

// VersionOf is the version of an upload as every sighting sees it: the
// scan (ListObjectsV2 reports no version ids), an S3 event (after a HEAD)
// and lessee submit must all name the same job, so the version id is not
// used even where HEAD reports one.
func VersionOf(o s3store.Object) string {
	return ObjectVersion("", o.ETag, o.LastModified)
}

// JobID derives the job id of an object version. Every sighting of the same
// upload (scan, event, redelivery) gets the same id.
func JobID(bucket, key, version string) string {
	h := sha256.New()
	for _, s := range []string{bucket, key, version} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	// Letters only: logs mask every 11-digit run (it could be a
	// fødselsnummer), and a hex id can hold one.
	sum := h.Sum(nil)
	id := make([]byte, 24)
	for i := range id {
		id[i] = 'a' + sum[i]%26
	}
	return string(id)
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
		asynq.TaskID(JobID(p.Bucket, p.Key, p.Version)),
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
