package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/validate"
)

// objectStore is the object storage uploads are read from and receipts
// written to.
type objectStore interface {
	Head(ctx context.Context, key string) (s3store.Object, error)
	Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (s3store.Object, error)
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
	Copy(ctx context.Context, srcKey, dstKey string) error
	Delete(ctx context.Context, key string) error
}

// jobLog records jobs and their outcome.
type jobLog interface {
	BeginJob(ctx context.Context, j lessee.Job) (lessee.Job, error)
	Job(ctx context.Context, id string) (lessee.Job, error)
	UpdateJobInfo(ctx context.Context, j lessee.Job) error
	FinishJob(ctx context.Context, id string, state lessee.JobState, code lessee.Code, message string) error
}

// registry applies chunks of rows and gives back their stored results.
type registry interface {
	HasAcceptedTerms(ctx context.Context, orgnr string) (bool, error)
	ApplyChunk(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys, decide func(*lessee.State) []lessee.Outcome) error
	Results(ctx context.Context, jobID string, fn func(lessee.Outcome) error) error
}

// Store is what the handler needs from SQL.
type Store interface {
	jobLog
	registry
}

// Config tunes the handler.
type Config struct {
	Limits    ingest.Limits
	Validate  validate.Config
	ChunkSize int    // rows per transaction
	TempDir   string // where uploads are spooled; "" means os.TempDir
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{Limits: ingest.DefaultLimits(), ChunkSize: 1000}
}

// Handler processes TypeIngestFile tasks.
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
}

// NewHandler returns a handler reading and writing through objects and store.
func NewHandler(objects objectStore, store Store, cfg Config, log *slog.Logger) *Handler {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultConfig().ChunkSize
	}
	return &Handler{objects: objects, store: store, cfg: cfg, log: log, Now: time.Now}
}

// errPermanent marks failures that a retry cannot fix.
var errPermanent = errors.New("permanent")

// ProcessTask implements asynq.Handler. Errors handed back to Asynq are
// masked: Asynq stores them in Redis and asynqmon shows them.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p IngestPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("decode ingest payload: %w: %w", err, asynq.SkipRetry)
	}
	if p.Key == "" || p.Bucket == "" {
		return fmt.Errorf("ingest payload without bucket or key: %w", asynq.SkipRetry)
	}
	log := h.log.With("job_id", JobID(p.Bucket, p.Key, p.Version), "key", p.Key)
	if p.GiveUp {
		log.Error("giving up on a file whose attempts never finished")
		if err := h.giveUp(ctx, p, errors.New("every attempt ended without finishing")); err != nil {
			return errors.New(ident.MaskText(err.Error()))
		}
		return nil
	}
	err := h.process(ctx, p, taskProgress(t))
	if err == nil {
		return nil
	}
	retried, okRetried := asynq.GetRetryCount(ctx)
	maxRetry, okMax := asynq.GetMaxRetry(ctx)
	permanent := errors.Is(err, errPermanent)
	if permanent || (okRetried && okMax && retried >= maxRetry) {
		log.Error("giving up on the file", "retried", retried, "permanent", permanent, "err", err)
		if gerr := h.giveUp(context.WithoutCancel(ctx), p, err); gerr != nil {
			// Recording the failure failed too: let Asynq retry, so the
			// file is not left without a receipt.
			log.Error("could not record the failure", "err", gerr)
			return errors.New(ident.MaskText(err.Error()))
		}
		return fmt.Errorf("%s: %w", ident.MaskText(err.Error()), asynq.SkipRetry)
	}
	log.Warn("transient failure; will retry", "retried", retried, "err", err)
	return errors.New(ident.MaskText(err.Error()))
}

// Process handles one object version. It is safe to call again after any
// failure; see the package documentation.
func (h *Handler) Process(ctx context.Context, p IngestPayload) error {
	return h.process(ctx, p, nil)
}

// progressFunc is told how far a job has come after every chunk.
type progressFunc func(done, total int)

// taskProgress writes a job's progress as the Asynq task result, which
// asynqmon shows beside the task. Tasks built in tests have no writer.
func taskProgress(t *asynq.Task) progressFunc {
	w := t.ResultWriter()
	if w == nil {
		return nil
	}
	return func(done, total int) {
		b, _ := json.Marshal(struct {
			RowsDone  int `json:"rows_done"`
			RowsTotal int `json:"rows_total"`
		}{done, total})
		// Progress is informational: a failed write must not fail the job.
		_, _ = w.Write(b)
	}
}

func (h *Handler) process(ctx context.Context, p IngestPayload, progress progressFunc) error {
	pk := ParseKey(p.Key)
	switch pk.Verdict {
	case KeyNotInbox:
		return nil
	case KeyNoSubmitter:
		return h.quarantine(ctx, p, pk)
	}
	job, err := h.beginJob(ctx, p, pk)
	if err != nil {
		return err
	}
	log := h.log.With("job_id", job.ID, "key", p.Key, "submitter", job.Submitter)
	if finished(job.State) {
		// An earlier attempt published the receipt; only the move may be left.
		return h.moveSource(ctx, job)
	}
	if pk.Verdict == KeyBadName {
		return h.refuse(ctx, job, &ingest.Refusal{Code: lessee.CodeInvalidKey, Message: "invalid object key: " + pk.Reason})
	}

	spool, err := os.CreateTemp(h.cfg.TempDir, spoolPrefix+"upload-*")
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	size, sum, err := h.download(ctx, p, spool)
	switch {
	case errors.Is(err, errTooLarge):
		return h.refuse(ctx, job, &ingest.Refusal{Code: lessee.CodeFileTooLarge,
			Message: fmt.Sprintf("the file is larger than the limit of %d bytes; split it into smaller files", h.cfg.Limits.MaxBytes)})
	case errors.Is(err, s3store.ErrNotFound), errors.Is(err, s3store.ErrPreconditionFailed):
		// Deleted or replaced before we read it: a newer upload has its own
		// job and receipt, so this one must not write at the same key.
		log.Warn("upload gone before processing", "err", err)
		if ferr := h.store.FinishJob(ctx, job.ID, lessee.JobRefused, lessee.CodeProcessingFailed, "superseded: the object was deleted or replaced before it was processed"); ferr != nil {
			return ferr
		}
		return nil
	case err != nil:
		return err
	}
	job.Size, job.SHA256 = size, sum

	ok, err := h.store.HasAcceptedTerms(ctx, job.Submitter)
	if err != nil {
		return fmt.Errorf("check terms: %w", err)
	}
	if !ok {
		return h.refuse(ctx, job, &ingest.Refusal{Code: lessee.CodeTermsNotAccepted,
			Message: fmt.Sprintf("organisation %s has not accepted the lessee API agreement or the third-party agreement", job.Submitter)})
	}

	// An XLSX file's records are spooled by the first pass: the second pass
	// and the receipt read them back instead of parsing the workbook again.
	records := spool.Name() + ".records"
	defer os.Remove(records)
	info, err := ingest.ScanSpooled(ctx, spool.Name(), h.cfg.Limits, records)
	var refusal *ingest.Refusal
	if errors.As(err, &refusal) {
		job.Format = info.Format
		return h.refuse(ctx, job, refusal)
	} else if err != nil {
		return fmt.Errorf("scan file: %w", err)
	}
	job.Format, job.RowsTotal, job.IgnoredColumns = info.Format, info.Rows, info.IgnoredColumns
	if err := h.store.UpdateJobInfo(ctx, job); err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	log.Info("processing file", "format", job.Format, "rows", job.RowsTotal, "resume_at", job.RowsDone)

	src := upload{path: spool.Name(), records: info.Spool}
	times, err := h.applyRows(ctx, job, src, progress)
	if err != nil {
		return err
	}
	log.Info("rows applied", "rows", job.RowsTotal-job.RowsDone, "read_ms", times.read.Milliseconds(),
		"validate_ms", times.validate.Milliseconds(), "apply_ms", times.apply.Milliseconds())
	return h.complete(ctx, job, src)
}

// upload is where a spooled upload's records are read from: the record
// spool of its first pass when there is one, else the file itself.
type upload struct {
	path    string // the spooled upload; "" when giving up without it
	records string // its record spool, or ""
}

func (h *Handler) openUpload(ctx context.Context, u upload) (ingest.Table, ingest.Info, error) {
	if u.records != "" {
		return ingest.OpenSpool(ctx, u.records)
	}
	return ingest.Open(ctx, u.path, h.cfg.Limits)
}

// stageTimes adds up where a file's time went, for the "rows applied" and
// "file processed" log lines (and `lessee bench`). Reading and validating
// run ahead of applying, so the stages overlap and may sum to more than
// the wall time.
type stageTimes struct {
	read, validate, apply time.Duration
}

// parsedChunk is a chunk of validated rows waiting to be applied.
type parsedChunk struct {
	rows  []lessee.Row
	start int // index of the first row
}

// beginJob records the job of an upload with a valid submitter, or returns
// the stored one.
func (h *Handler) beginJob(ctx context.Context, p IngestPayload, pk ParsedKey) (lessee.Job, error) {
	id, name := JobID(p.Bucket, p.Key, p.Version), receipt.SafeName(pk.Name)
	if pk.Verdict == KeyBadName {
		// Its derived name could equal a real file's (a/b.csv and a_b.csv):
		// the job id keeps the receipt and failed/ copy apart.
		name = receipt.SafeName(id + "-" + pk.Name)
	}
	job, err := h.store.BeginJob(ctx, lessee.Job{
		ID: id, Bucket: p.Bucket, Key: p.Key, Version: p.Version,
		Submitter: pk.Submitter, Name: name, Size: p.Size, State: lessee.JobRunning,
	})
	if err != nil {
		return job, fmt.Errorf("begin job: %w", err)
	}
	return job, nil
}

// applyRows validates and applies the rows after the job's checkpoint, one
// transaction per chunk. A goroutine reads and parses the next chunk while
// the current one is applied; chunks are applied one at a time in file
// order, so per-vehicle order is kept, and at most three chunks are in
// memory.
func (h *Handler) applyRows(ctx context.Context, job lessee.Job, src upload, progress progressFunc) (stageTimes, error) {
	var times stageTimes
	table, _, err := h.openUpload(ctx, src)
	if err != nil {
		return times, fmt.Errorf("open file: %w", err)
	}
	defer table.Close()

	vjob := validate.Job{ID: job.ID, Submitter: job.Submitter, ProcessingDate: job.ProcessingDate, Now: job.Started}
	checkpoint := job.RowsDone
	ctx, cancel := context.WithCancel(ctx)
	chunks := make(chan parsedChunk, 1)
	readErr := make(chan error, 1)
	var readTimes stageTimes
	go func() {
		defer close(chunks)
		readErr <- h.readChunks(ctx, table, vjob, checkpoint, chunks, &readTimes)
	}()
	defer func() {
		// Stop the reader and wait for it before the table is closed.
		cancel()
		for range chunks {
		}
	}()

	for c := range chunks {
		start := time.Now()
		var decided time.Duration
		err := h.store.ApplyChunk(ctx, job.ID, c.start, validate.KeysFor(vjob, c.rows), func(st *lessee.State) []lessee.Outcome {
			t := time.Now()
			out := validate.Decide(h.cfg.Validate, vjob, st, c.rows)
			decided = time.Since(t)
			return out
		})
		if err != nil {
			return times, fmt.Errorf("apply rows %d-%d: %w", c.start, c.start+len(c.rows)-1, err)
		}
		times.validate += decided
		times.apply += time.Since(start) - decided
		checkpoint = c.start + len(c.rows)
		if progress != nil {
			progress(checkpoint, job.RowsTotal)
		}
	}
	if err := <-readErr; err != nil {
		return times, err
	}
	times.read, times.validate = readTimes.read, times.validate+readTimes.validate
	return times, nil
}

// readChunks reads and parses the rows from index from on and sends them
// in chunks of the configured size.
func (h *Handler) readChunks(ctx context.Context, table ingest.Table, vjob validate.Job, from int, out chan<- parsedChunk, times *stageTimes) error {
	send := func(c parsedChunk) error {
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := parsedChunk{rows: make([]lessee.Row, 0, h.cfg.ChunkSize), start: from}
	for {
		t := time.Now()
		raw, err := table.Next()
		times.read += time.Since(t)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The first pass read this file cleanly, so this is the disk.
			return fmt.Errorf("read rows: %w", err)
		}
		if raw.Index < from {
			continue
		}
		t = time.Now()
		c.rows = append(c.rows, validate.ParseRow(h.cfg.Validate, vjob, raw))
		times.validate += time.Since(t)
		if len(c.rows) == h.cfg.ChunkSize {
			if err := send(c); err != nil {
				return err
			}
			c = parsedChunk{rows: make([]lessee.Row, 0, h.cfg.ChunkSize), start: c.start + len(c.rows)}
		}
	}
	if len(c.rows) > 0 {
		return send(c)
	}
	return nil
}

// complete publishes the receipt and summary of a processed file, then
// finishes the job and archives the source. src is the spooled upload, from
// which an XLSX receipt takes the user's rows; without it (when giving up)
// an XLSX upload gets the standard receipt columns instead of its own.
func (h *Handler) complete(ctx context.Context, job lessee.Job, src upload) error {
	stored, err := h.store.Job(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("reload job: %w", err)
	}
	if stored.RowsDone != stored.RowsTotal {
		// Both passes read the same spooled bytes; a difference is a bug,
		// and a retry would find the same.
		return fmt.Errorf("%w: %d of %d rows have results", errPermanent, stored.RowsDone, stored.RowsTotal)
	}
	stored.State = lessee.JobCompleted
	start := time.Now()
	var userHeader []string
	rows := func(w *receiptWriters) error {
		return h.store.Results(ctx, job.ID, w.Write)
	}
	if stored.Format == lessee.FormatXLSX && src.path != "" {
		// A third pass over the records, in step with the stored results:
		// both stream in row order, so neither side is held in memory.
		table, info, err := h.openUpload(ctx, src)
		if err != nil {
			return fmt.Errorf("reopen file: %w", err)
		}
		defer table.Close()
		if ot, ok := table.(ingest.OriginalTable); ok {
			userHeader = info.Header
			rows = func(w *receiptWriters) error {
				return h.store.Results(ctx, job.ID, func(o lessee.Outcome) error {
					cells, err := originalCells(ot, o)
					if err != nil {
						return err
					}
					return w.WriteOriginal(cells, o)
				})
			}
		}
	}
	if err := h.publish(ctx, stored, userHeader, rows); err != nil {
		return err
	}
	receiptTime := time.Since(start)
	if err := h.store.FinishJob(ctx, job.ID, lessee.JobCompleted, "", ""); err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	stored.State = lessee.JobCompleted
	stored.Finished = h.Now()
	h.finished(stored)
	h.log.Info("file processed", "job_id", job.ID, "key", job.Key, "submitter", job.Submitter,
		"applied", stored.Applied, "unchanged", stored.Unchanged, "rejected", stored.Rejected,
		"receipt_ms", receiptTime.Milliseconds())
	return h.moveSource(ctx, stored)
}

// refuse publishes the receipt of a refused file, finishes the job and moves
// the source to failed/. A refused file is a handled file: the task ends
// without error and is not retried; only a failure to publish is returned.
func (h *Handler) refuse(ctx context.Context, job lessee.Job, r *ingest.Refusal) error {
	return h.refuseAfter(ctx, job, r, false)
}

// refuseAfter is refuse; with storedRows the receipt first lists the rows
// that already have results, so a file given up part-way tells the
// submitter exactly which rows were applied.
func (h *Handler) refuseAfter(ctx context.Context, job lessee.Job, r *ingest.Refusal, storedRows bool) error {
	job.State, job.Code, job.Message = lessee.JobRefused, r.Code, r.Message
	if prefix := fmt.Sprintf("row %d: ", r.Line); r.Line > 0 && !strings.HasPrefix(r.Message, prefix) {
		job.Message = prefix + r.Message
	}
	if job.Size > 0 || job.SHA256 != "" || job.Format != "" {
		// Keep what is known of the file (size, hash, format) with the job.
		if err := h.store.UpdateJobInfo(ctx, job); err != nil {
			return fmt.Errorf("update job: %w", err)
		}
	}
	if err := h.publish(ctx, job, nil, func(w *receiptWriters) error {
		if storedRows {
			if err := h.store.Results(ctx, job.ID, w.Write); err != nil {
				return err
			}
		}
		return w.WriteRefusal(r.Line, r.Code, r.Message)
	}); err != nil {
		return err
	}
	if err := h.store.FinishJob(ctx, job.ID, lessee.JobRefused, job.Code, job.Message); err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	job.Finished = h.Now()
	h.finished(job)
	h.log.Warn("file refused", "job_id", job.ID, "key", job.Key, "submitter", job.Submitter, "code", r.Code, "reason", job.Message)
	return h.moveSource(ctx, job)
}

// publish writes the receipt CSV (and, for an XLSX upload, an XLSX
// receipt) and then the summary JSON, each as a single object write so a
// reader never sees half of one. The summary comes last: its presence means
// the receipts are complete. The XLSX receipt repeats the user's columns
// under userHeader, or has the standard columns when userHeader is nil.
func (h *Handler) publish(ctx context.Context, job lessee.Job, userHeader []string, rows func(*receiptWriters) error) error {
	receiptKey, summaryKey := receipt.Keys(job.Submitter, job.Name)
	// A summary of an earlier upload with the same name goes first, so that
	// a summary present always belongs to the receipts beside it.
	if err := h.objects.Delete(ctx, summaryKey); err != nil && !errors.Is(err, s3store.ErrNotFound) {
		return fmt.Errorf("delete old summary: %w", err)
	}
	csvFile, err := os.CreateTemp(h.cfg.TempDir, spoolPrefix+"receipt-*")
	if err != nil {
		return fmt.Errorf("create receipt file: %w", err)
	}
	defer os.Remove(csvFile.Name())
	defer csvFile.Close()
	csvw, err := receipt.NewCSVWriter(csvFile)
	if err != nil {
		return err
	}
	var xlsxw *receipt.XLSXWriter
	if job.Format == lessee.FormatXLSX {
		opts := receipt.XLSXOptions{TempDir: h.cfg.TempDir}
		if userHeader != nil {
			xlsxw, err = receipt.NewXLSXOriginalWriter(opts, userHeader)
		} else {
			xlsxw, err = receipt.NewXLSXWriter(opts)
		}
		if err != nil {
			return err
		}
		defer xlsxw.Close()
	}
	if err := rows(&receiptWriters{csv: csvw, xlsx: xlsxw}); err != nil {
		return fmt.Errorf("write receipt: %w", err)
	}
	if err := csvw.Flush(); err != nil {
		return err
	}
	if err := h.putFile(ctx, receiptKey, csvFile, "text/csv; charset=utf-8"); err != nil {
		return err
	}
	summary := receipt.NewSummary(job, h.Now(), receiptKey)
	if xlsxw != nil {
		xlsxFile, err := os.CreateTemp(h.cfg.TempDir, spoolPrefix+"receipt-*.xlsx")
		if err != nil {
			return fmt.Errorf("create receipt file: %w", err)
		}
		defer os.Remove(xlsxFile.Name())
		defer xlsxFile.Close()
		if err := xlsxw.Finish(xlsxFile); err != nil {
			return err
		}
		summary.ReceiptXLSX = receipt.XLSXKey(job.Submitter, job.Name)
		if err := h.putFile(ctx, summary.ReceiptXLSX, xlsxFile, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"); err != nil {
			return err
		}
	}
	b, err := summary.Marshal()
	if err != nil {
		return err
	}
	if err := h.objects.Put(ctx, summaryKey, bytes.NewReader(b), int64(len(b)), "application/json"); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	return nil
}

// putFile uploads what has been written to f as one object.
func (h *Handler) putFile(ctx context.Context, key string, f *os.File, contentType string) error {
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("size %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind %s: %w", key, err)
	}
	if err := h.objects.Put(ctx, key, f, size, contentType); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// receiptWriters writes every receipt line to the receipt CSV and, for an
// XLSX upload, to the XLSX receipt.
type receiptWriters struct {
	csv  *receipt.CSVWriter
	xlsx *receipt.XLSXWriter // nil unless the upload is XLSX
}

func (w *receiptWriters) Write(o lessee.Outcome) error {
	if err := w.csv.Write(o); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.Write(o)
	}
	return nil
}

// WriteOriginal writes o to the receipt CSV, and o beside the user's cells
// of its row to the XLSX receipt.
func (w *receiptWriters) WriteOriginal(cells []string, o lessee.Outcome) error {
	if err := w.csv.Write(o); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.WriteOriginal(cells, o)
	}
	return nil
}

func (w *receiptWriters) WriteRefusal(line int, code lessee.Code, message string) error {
	if err := w.csv.WriteRefusal(line, code, message); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.WriteRefusal(line, code, message)
	}
	return nil
}

// originalCells steps t to the record of outcome o and returns its cells as
// uploaded. The table and the stored results both run in index order with
// one outcome per record, so t only ever moves forward; a record that does
// not match is a fault, never papered over with another row's cells.
func originalCells(t ingest.OriginalTable, o lessee.Outcome) ([]string, error) {
	for {
		raw, err := t.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reread file: no record %d (row %d)", o.Index, o.Line)
		}
		if err != nil {
			return nil, fmt.Errorf("reread file: %w", err)
		}
		if raw.Index < o.Index {
			continue
		}
		if raw.Index != o.Index || raw.Line != o.Line {
			return nil, fmt.Errorf("reread file: record %d is row %d, its result says record %d, row %d",
				raw.Index, raw.Line, o.Index, o.Line)
		}
		return t.Original(), nil
	}
}

func (h *Handler) finished(job lessee.Job) {
	if h.OnFinished != nil {
		h.OnFinished(job)
	}
}

// moveSource moves the upload out of the inbox: to archive/ when processed,
// to failed/ when refused. Finding the source already gone means an earlier
// attempt moved it.
func (h *Handler) moveSource(ctx context.Context, job lessee.Job) error {
	folder := "archive"
	if job.State == lessee.JobRefused {
		folder = "failed"
	}
	dst := path.Join(folder, job.Submitter, job.Name)
	// The inbox may hold a newer upload under the same name by now (a retry
	// of this move, or an upload between the steps): leave it for its own
	// job. S3 offers no conditional delete, so a small window remains
	// between this check and the delete.
	if etag, ok := versionETag(job.Version); ok {
		o, err := h.objects.Head(ctx, job.Key)
		if errors.Is(err, s3store.ErrNotFound) {
			return nil // moved by an earlier attempt
		}
		if err != nil {
			return fmt.Errorf("move %s: %w", job.Key, err)
		}
		if o.ETag != etag {
			h.log.Warn("a newer upload replaced the file before it was moved; leaving it for its own job",
				"job_id", job.ID, "key", job.Key)
			return nil
		}
	}
	if err := h.objects.Copy(ctx, job.Key, dst); err != nil {
		if errors.Is(err, s3store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("move %s to %s: %w", job.Key, folder, err)
	}
	if err := h.objects.Delete(ctx, job.Key); err != nil && !errors.Is(err, s3store.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", job.Key, err)
	}
	return nil
}

// quarantine moves an object whose key names no valid submitter out of the
// inbox, so operators can look at it; nobody can be sent a receipt.
func (h *Handler) quarantine(ctx context.Context, p IngestPayload, pk ParsedKey) error {
	id := JobID(p.Bucket, p.Key, p.Version)
	dst := "quarantine/" + id + "-" + receipt.SafeName(pk.Name)
	if _, err := h.store.BeginJob(ctx, lessee.Job{ID: id, Bucket: p.Bucket, Key: p.Key, Version: p.Version,
		Name: receipt.SafeName(pk.Name), Size: p.Size, State: lessee.JobRunning}); err != nil {
		return fmt.Errorf("begin quarantine job: %w", err)
	}
	if err := h.objects.Copy(ctx, p.Key, dst); err != nil && !errors.Is(err, s3store.ErrNotFound) {
		return fmt.Errorf("quarantine %s: %w", p.Key, err)
	}
	if err := h.objects.Delete(ctx, p.Key); err != nil && !errors.Is(err, s3store.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", p.Key, err)
	}
	if err := h.store.FinishJob(ctx, id, lessee.JobRefused, lessee.CodeInvalidKey, pk.Reason+"; moved to "+dst); err != nil {
		return fmt.Errorf("finish quarantine job: %w", err)
	}
	h.log.Warn("upload quarantined", "job_id", id, "key", p.Key, "to", dst, "reason", pk.Reason)
	return nil
}

// giveUp records a file whose transient failures outlasted the retries: a
// receipt saying so, the source in failed/. Rows applied before stay
// applied; a re-upload reports them unchanged.
func (h *Handler) giveUp(ctx context.Context, p IngestPayload, cause error) error {
	pk := ParseKey(p.Key)
	if pk.Verdict != KeyOK {
		return nil
	}
	// The job may not exist yet if no attempt got that far.
	job, err := h.beginJob(ctx, p, pk)
	if err != nil {
		return err
	}
	if finished(job.State) {
		return nil
	}
	if job.RowsTotal > 0 && job.RowsDone == job.RowsTotal {
		// Every row has its result; only publishing failed. Publish the
		// full receipt rather than throw the results away.
		return h.complete(ctx, job, upload{})
	}
	if job.RowsDone > 0 {
		// Rows with results are listed first: those marked applied are in
		// the registry; a re-upload reports them unchanged.
		return h.refuseAfter(ctx, job, &ingest.Refusal{Code: lessee.CodeProcessingFailed,
			Message: fmt.Sprintf("processing stopped after %d of %d rows because of a technical fault; the rows above were processed as shown; upload the file again to process the rest", job.RowsDone, job.RowsTotal)}, true)
	}
	return h.refuse(ctx, job, &ingest.Refusal{Code: lessee.CodeProcessingFailed,
		Message: "the file could not be processed because of a technical fault; upload it again"})
}

var errTooLarge = errors.New("file too large")

// spoolPrefix names the handler's temporary files.
const spoolPrefix = "lessee-"

// RemoveSpoolFiles deletes the handler's temporary files left in dir by a
// process that was killed. Call it at start, before any handler runs.
func RemoveSpoolFiles(dir string) error {
	for _, pattern := range []string{spoolPrefix + "upload-*", spoolPrefix + "receipt-*"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// download spools the object to f, hashing it and stopping at the size limit.
func (h *Handler) download(ctx context.Context, p IngestPayload, f *os.File) (int64, string, error) {
	limit := h.cfg.Limits.MaxBytes
	if limit > 0 && p.Size > limit {
		return 0, "", errTooLarge
	}
	hash := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(f, hash), remaining: limit}
	if _, err := h.objects.Download(ctx, p.Key, p.ETag, lw); err != nil {
		if lw.exceeded {
			return 0, "", errTooLarge
		}
		return 0, "", fmt.Errorf("download %s: %w", p.Key, err)
	}
	return lw.written, hex.EncodeToString(hash.Sum(nil)), nil
}

// limitWriter fails once more than remaining bytes are written (no limit
// when remaining starts at 0).
type limitWriter struct {
	w         io.Writer
	remaining int64
	written   int64
	exceeded  bool
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if l.remaining > 0 && l.written+int64(len(b)) > l.remaining {
		l.exceeded = true
		return 0, errTooLarge
	}
	n, err := l.w.Write(b)
	l.written += int64(n)
	return n, err
}

func finished(s lessee.JobState) bool {
	return s == lessee.JobCompleted || s == lessee.JobRefused
}
