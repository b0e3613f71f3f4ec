package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/validate"
)

// objectStore is the object storage uploads are read from and receipts
// written to. A missing object is an error with code lessee.ENOTFOUND, a
// replaced one (If-Match failed) lessee.ECONFLICT.
type objectStore interface {
	Head(ctx context.Context, key string) (lessee.Object, error)
	Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (lessee.Object, error)
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
	Copy(ctx context.Context, srcKey, dstKey string) error
	// CopyIfMatch copies srcKey if its ETag is etag and returns the
	// copy's ETag; lessee.ENOTFOUND when gone, lessee.ECONFLICT when
	// replaced.
	CopyIfMatch(ctx context.Context, srcKey, dstKey, etag string) (string, error)
	Delete(ctx context.Context, key string) error
}

// jobLog records jobs and their outcome.
type jobLog interface {
	BeginJob(ctx context.Context, j lessee.Job) (lessee.Job, error)
	Job(ctx context.Context, id string) (lessee.Job, error)
	UpdateJobInfo(ctx context.Context, j lessee.Job) error
	FinishJob(ctx context.Context, id string, state lessee.JobState, code lessee.Code, message string) error
	// ClaimAttempt starts an attempt and returns its fencing token;
	// FenceAttempt decides the job's end (its receipts those the attempt
	// staged, its refusal code and message) for the attempt holding the
	// latest, and fails with lessee.ECONFLICT for any other.
	ClaimAttempt(ctx context.Context, id string) (int, error)
	FenceAttempt(ctx context.Context, id string, attempt int, code lessee.Code, message string) error
	SetPinned(ctx context.Context, id, etag string) error
	SetHistory(ctx context.Context, id, folder string) error
	// NewestPublished is the newest upload's job under a receipt name
	// whose receipts are in its history folder (lessee.ENOTFOUND: none).
	NewestPublished(ctx context.Context, submitter, name string, dryRun bool) (lessee.Job, error)
}

// registry applies chunks of rows and gives back their stored results.
type registry interface {
	// Enterprise returns an enterprise with its terms; lessee.ENOTFOUND
	// when the registry knows nothing of it.
	Enterprise(ctx context.Context, orgnr string) (*lessee.Enterprise, error)
	// ApplyChunkInTurn applies a chunk in one transaction, after the
	// chunk before it when turn says so (see lessee.ChunkTurn).
	ApplyChunkInTurn(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys,
		decide func(*lessee.State) lessee.Decision, turn lessee.ChunkTurn) error
	Results(ctx context.Context, jobID string, fn func(lessee.Result) error) error
}

// Store is what the handler needs from SQL.
type Store interface {
	jobLog
	registry
	snapshotStore
}

// Config tunes the handler.
type Config struct {
	Limits    ingest.Limits
	Validate  validate.Config
	ChunkSize int // rows per transaction
	// ChunksInFlight is how many chunks of a change file may be in flight
	// at once (see lessee.ChunkTurn); zero or less means 2.
	ChunksInFlight int
	TempDir        string // where uploads are spooled; "" means os.TempDir
	// SnapshotMaxRemovals is the most a snapshot may remove of its fleet's
	// lessees by leaving vehicles out, in percent of the fleet's vehicles
	// with a lessee; past it the file is refused with TOO_MANY_REMOVALS.
	// Zero or less means DefaultSnapshotMaxRemovals.
	SnapshotMaxRemovals float64
	// DefaultLanguage is what receipts are written in for a submitter
	// whose enterprise names no language, or whom the registry does not
	// know; zero means lessee.Norwegian.
	DefaultLanguage lessee.Language
}

// DefaultChunkSize is the rows per chunk for a database with one writer at
// a time (SQLite) or with row locks (PostgreSQL). SQLite's chunks go one at
// a time, and each commit writes every page the chunk touched to the WAL
// again: 4,000-row chunks made BenchmarkWorkerPath 1.4 times faster there
// than 1,000 rows (100,000 rows, back to back); on PostgreSQL 2,000 rows
// gained less than the noise, and smaller chunks hold fewer row locks.
func DefaultChunkSize(singleWriter bool) int {
	if singleWriter {
		return 4000
	}
	return 1000
}

// DefaultSnapshotMaxRemovals is the default of Config.SnapshotMaxRemovals.
const DefaultSnapshotMaxRemovals = 10

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{Limits: ingest.DefaultLimits(), ChunkSize: 1000, ChunksInFlight: 2, SnapshotMaxRemovals: DefaultSnapshotMaxRemovals,
		DefaultLanguage: lessee.Norwegian}
}

// Handler processes TypeIngestFile tasks: the task boundary and the
// orchestration of one file. The apply pipeline is in apply.go, the end of
// a job (receipt, archive, failed, quarantine, giving up) in finish.go, the
// download and spool files in spool.go, and error classification and
// masking in middleware.go.
type Handler struct {
	objects objectStore
	store   Store
	cfg     Config
	log     *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// OnFinished, if set, is told of every job this handler finishes
	// (metrics). A retry that finishes an already finished job again may
	// report it twice.
	OnFinished func(lessee.Job)

	running runningFiles // for a shutdown to report
}

// NewHandler returns a handler reading and writing through objects and store.
func NewHandler(objects objectStore, store Store, cfg Config, log *slog.Logger) *Handler {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultConfig().ChunkSize
	}
	if cfg.ChunksInFlight <= 0 {
		cfg.ChunksInFlight = DefaultConfig().ChunksInFlight
	}
	if cfg.SnapshotMaxRemovals <= 0 {
		cfg.SnapshotMaxRemovals = DefaultSnapshotMaxRemovals
	}
	cfg.DefaultLanguage = cfg.DefaultLanguage.Or(lessee.Norwegian)
	return &Handler{objects: objects, store: store, cfg: cfg, log: log, Now: time.Now}
}

// errPermanent marks failures that a retry cannot fix.
var errPermanent = errors.New("permanent")

// decodePayload reads a task's payload; a payload that cannot name an
// upload is a permanent failure.
func decodePayload(t *asynq.Task) (IngestPayload, error) {
	var p IngestPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("decode ingest payload: %w: %w", err, asynq.SkipRetry)
	}
	if p.Key == "" || p.Bucket == "" {
		return p, fmt.Errorf("ingest payload without bucket or key: %w", asynq.SkipRetry)
	}
	return p, nil
}

// ProcessTask implements asynq.Handler: processTask wrapped in the
// middleware that Serve installs on its mux, so that a handler registered
// anywhere else still gives up on a file with a receipt and never hands
// Asynq an unmasked error.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return Mask(h.Classify(asynq.HandlerFunc(h.processTask))).ProcessTask(ctx, t)
}

// processTask handles one task and returns its errors as they are; the
// middleware classifies them for retry and masks them.
func (h *Handler) processTask(ctx context.Context, t *asynq.Task) error {
	p, err := decodePayload(t)
	if err != nil {
		return err
	}
	if p.GiveUp {
		h.log.Error("giving up on a file whose attempts never finished",
			"job_id", intake.JobID(p.Bucket, p.Key, p.Version), "key", p.Key)
		return h.giveUp(ctx, p.Upload, errors.New("every attempt ended without finishing"))
	}
	id := intake.JobID(p.Bucket, p.Key, p.Version)
	h.running.begin(id, p.Key)
	defer h.running.end(id)
	return h.process(ctx, p.Upload, h.running.track(id, taskProgress(t)))
}

// Process handles one object version. It is safe to call again after any
// failure; see the package documentation.
func (h *Handler) Process(ctx context.Context, p IngestPayload) error {
	return h.process(ctx, p.Upload, nil)
}

func (h *Handler) process(ctx context.Context, u lessee.Upload, progress progressFunc) error {
	pk := objectkey.Parse(u.Key)
	switch pk.Verdict {
	case objectkey.NotInbox:
		return nil
	case objectkey.NoSubmitter:
		return h.quarantine(ctx, u, pk)
	}
	job, err := h.beginJob(ctx, u, pk)
	if err != nil {
		return err
	}
	log := h.log.With("job_id", job.ID, "key", u.Key, "submitter", job.Submitter)
	if finished(job.State) || job.PublishedAttempt > 0 {
		// An earlier attempt decided the job's end; publishing its
		// receipts, finishing, the cleaning up and the move may be left.
		return h.carryOut(ctx, job)
	}
	// From here on an earlier attempt still running can no longer finish
	// the job: this one holds the latest token.
	if job.Attempt, err = h.store.ClaimAttempt(ctx, job.ID); err != nil {
		return fmt.Errorf("claim attempt: %w", err)
	}
	if pk.Verdict == objectkey.BadName {
		return h.refuse(ctx, job, message.Refuse(lessee.CodeInvalidKey, 0, message.InvalidKey, pk.Reason))
	}
	if limit := h.cfg.Limits.MaxBytes; limit > 0 && u.Size > limit {
		return h.refuse(ctx, job, tooLarge(limit))
	}
	pinned, err := h.pin(ctx, &job, u)
	if code := lessee.ErrorCode(err); code == lessee.ENOTFOUND || code == lessee.ECONFLICT {
		// Deleted or replaced before any attempt could take its copy: a
		// newer upload has its own job and receipt.
		log.Warn("upload gone before its first attempt could copy it", "err", err)
		return h.refuse(ctx, job, message.Refuse(lessee.CodeProcessingFailed, 0, message.SourceGone))
	} else if err != nil {
		return err
	}

	spool, err := os.CreateTemp(h.cfg.TempDir, spoolPrefix+"upload-*")
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer func() { _ = spool.Close() }() // a spool: read back by name, then removed

	size, sum, err := h.download(ctx, pinned, spool)
	switch {
	case errors.Is(err, errTooLarge):
		return h.refuse(ctx, job, tooLarge(h.cfg.Limits.MaxBytes))
	case err != nil:
		return err
	}
	job.Size, job.SHA256 = size, sum

	submitter, err := h.store.Enterprise(ctx, job.Submitter)
	if lessee.ErrorCode(err) == lessee.ENOTFOUND {
		submitter, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("check terms: %w", err)
	}
	job.Language = message.Choose(submitter, h.cfg.DefaultLanguage)
	if r := validate.CheckSubmitter(submitter, job.Submitter, job.Started); r != nil {
		return h.refuse(ctx, job, r)
	}

	// An XLSX file's records are spooled by the first pass: the second pass
	// and the receipt read them back instead of parsing the workbook again.
	records := spool.Name() + ".records"
	defer os.Remove(records)
	limits := h.cfg.Limits
	limits.Snapshot = job.Mode == lessee.ModeSnapshot
	info, err := ingest.ScanSpooled(ctx, spool.Name(), limits, records)
	if r, ok := lessee.AsRefusal(err); ok {
		job.Format = info.Format
		return h.refuse(ctx, job, r)
	} else if err != nil {
		return fmt.Errorf("scan file: %w", err)
	}
	src := upload{path: spool.Name(), records: info.Spool, snapshot: limits.Snapshot}
	job.Format, job.IgnoredColumns, job.FileRows = info.Format, info.IgnoredColumns, info.Rows
	var plan snapshotPlan
	if job.Mode == lessee.ModeSnapshot {
		// Planned with the job as stored: a resumed snapshot keeps the
		// absent list (and so the row count) its first attempt froze.
		var refusal *lessee.Error
		plan, refusal, err = h.planSnapshot(ctx, job, src)
		if err != nil {
			return err
		}
		if refusal != nil {
			return h.refuseSnapshot(ctx, job, refusal)
		}
	}
	job.RowsTotal = info.Rows + plan.absent
	if err := h.store.UpdateJobInfo(ctx, job); err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if progress != nil {
		progress(job.RowsDone, job.RowsTotal) // where a resumed file starts
	}
	log.Info("processing file", "format", job.Format, "mode", job.Mode, "dry_run", job.DryRun,
		"rows", job.RowsTotal, "resume_at", job.RowsDone)

	var early *earlyReceipt
	if job.RowsDone == 0 && job.Mode == lessee.ModeChanges {
		// Every line will come from this attempt's chunks: the receipt is
		// written as they commit.
		if early = h.startEarlyReceipt(ctx, job, src); early != nil {
			defer early.close()
		}
	}
	times, err := h.applyRows(ctx, job, src, progress, early)
	if err != nil {
		return err
	}
	if job.Mode == lessee.ModeSnapshot {
		if err := h.applyAbsent(ctx, job, plan, progress); err != nil {
			return err
		}
	}
	log.Info("rows applied", "rows", job.RowsTotal-job.RowsDone, "read_ms", times.read.Milliseconds(),
		"validate_ms", times.validate.Milliseconds(), "apply_ms", times.apply.Milliseconds())
	return h.complete(ctx, job, src, early)
}

// tooLarge is the refusal of a file over the size limit.
func tooLarge(limit int64) *lessee.Error {
	return message.Refuse(lessee.CodeFileTooLarge, 0, message.FileLargerThanLimit, limit)
}

// pin returns the private copy of the upload that every attempt of job
// reads, taking it on the first attempt: a server-side copy made only if
// the upload is still the version the job is for. Replacing or deleting
// the upload afterwards changes nothing for the job.
func (h *Handler) pin(ctx context.Context, job *lessee.Job, u lessee.Upload) (lessee.Upload, error) {
	pinned := lessee.Upload{Bucket: u.Bucket, Key: objectkey.PinnedKey(job.ID), Version: u.Version, Size: u.Size}
	if job.PinnedETag != "" {
		pinned.ETag = job.PinnedETag
		return pinned, nil
	}
	etag, ok := intake.VersionETag(job.Version)
	if !ok {
		etag = u.ETag
	}
	copied, err := h.objects.CopyIfMatch(ctx, u.Key, pinned.Key, etag)
	if err != nil {
		return pinned, fmt.Errorf("pin %s: %w", u.Key, err)
	}
	if err := h.store.SetPinned(ctx, job.ID, copied); err != nil {
		return pinned, err
	}
	job.PinnedETag, pinned.ETag = copied, copied
	return pinned, nil
}

// beginJob records the job of an upload with a valid submitter, or returns
// the stored one.
func (h *Handler) beginJob(ctx context.Context, u lessee.Upload, pk objectkey.Parsed) (lessee.Job, error) {
	id, name := intake.JobID(u.Bucket, u.Key, u.Version), objectkey.SafeName(pk.Name)
	if pk.Verdict == objectkey.BadName {
		// Its derived name could equal a real file's (a/b.csv and a_b.csv):
		// the job id keeps the receipt and failed/ copy apart.
		name = objectkey.SafeName(id + "-" + pk.Name)
	}
	uploaded, _ := intake.VersionTime(u.Version)
	job, err := h.store.BeginJob(ctx, lessee.Job{
		ID: id, Bucket: u.Bucket, Key: u.Key, Version: u.Version,
		Submitter: pk.Submitter, Name: name, Size: u.Size, State: lessee.JobRunning,
		Mode: pk.Source.Mode(), DryRun: pk.Source.DryRun(), Uploaded: uploaded,
	})
	if err != nil {
		return job, fmt.Errorf("begin job: %w", err)
	}
	return job, nil
}

func finished(s lessee.JobState) bool {
	return s == lessee.JobCompleted || s == lessee.JobRefused
}
