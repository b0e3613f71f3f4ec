package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
)

// This file is the end of a job: publishing its receipt and finishing it,
// then moving the upload to archive/ or failed/, or quarantine/ when no
// submitter can be told; and giving up on a file that kept failing.

// publisher publishes receipts through the handler's object store, spool
// folder and clock, as they are at the time (tests replace them).
func (h *Handler) publisher() *receipt.Publisher {
	return receipt.NewPublisher(h.objects, h.cfg.TempDir, func() time.Time { return h.Now() })
}

// complete publishes the receipt and summary of a processed file, then
// finishes the job and archives the source. src is the spooled upload, from
// which an XLSX receipt takes the user's rows; without it (when giving up)
// an XLSX upload gets the standard receipt columns instead of its own.
func (h *Handler) complete(ctx context.Context, job lessee.Job, src upload, early *earlyReceipt) error {
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
	stored.Attempt = job.Attempt
	start := time.Now()
	stage := func(folder string) error {
		return h.stageFromResults(ctx, stored, src, folder)
	}
	if early != nil {
		draft, err := early.finish(stored.RowsTotal)
		if err == nil {
			stage = func(folder string) error { return h.publisher().StageDraft(ctx, draft, stored, folder) }
		} else {
			h.log.Warn("receipt written from the stored results instead", "job_id", job.ID, "err", err)
		}
	}
	stored, won, err := h.stageAndFinishWith(ctx, stored, stage)
	if err != nil || !won {
		return err
	}
	receiptTime := time.Since(start)
	h.dropScratch(ctx, stored)
	h.log.Info("file processed", "job_id", job.ID, "key", job.Key, "submitter", job.Submitter,
		"applied", stored.Applied, "unchanged", stored.Unchanged, "rejected", stored.Rejected,
		"receipt_ms", receiptTime.Milliseconds())
	return h.moveSource(ctx, stored)
}

// stageFromResults writes the receipt of a completed job from its stored
// results into folder.
func (h *Handler) stageFromResults(ctx context.Context, stored lessee.Job, src upload, folder string) error {
	// A third pass over an XLSX upload's records, in step with the stored
	// results: both stream in row order, so neither side is held in memory.
	orig, err := h.openOriginal(ctx, stored, src)
	if err != nil {
		return err
	}
	defer orig.close()
	return h.publisher().Stage(ctx, stored, folder, orig.header, func(w *receipt.Lines) error {
		return h.store.Results(ctx, stored.ID, func(r lessee.Result) error { return orig.write(w, r) })
	})
}

// originalRows gives an XLSX upload's receipt the user's cells of each row:
// the records of the upload, stepped in line with the results, and the
// user's header. Without records (a CSV upload, a snapshot, whose receipt
// keeps the standard columns to show each row's derived operation and
// lists vehicles the file left out, or no spooled upload when giving up)
// it writes the standard line.
type originalRows struct {
	table  ingest.Table
	ot     ingest.OriginalTable
	header []string
}

// openOriginal opens the records of src for job's receipt, if it repeats
// the user's rows.
func (h *Handler) openOriginal(ctx context.Context, job lessee.Job, src upload) (originalRows, error) {
	if job.Format != lessee.FormatXLSX || src.path == "" || job.Mode == lessee.ModeSnapshot {
		return originalRows{}, nil
	}
	table, info, err := h.openUpload(ctx, src)
	if err != nil {
		return originalRows{}, fmt.Errorf("reopen file: %w", err)
	}
	ot, ok := table.(ingest.OriginalTable)
	if !ok {
		_ = table.Close() // read only
		return originalRows{}, nil
	}
	return originalRows{table: table, ot: ot, header: info.Header}, nil
}

// write writes the receipt line of r, beside the user's cells of its row
// when there are records.
func (o originalRows) write(w *receipt.Lines, r lessee.Result) error {
	if o.ot == nil {
		return w.Write(r)
	}
	cells, err := originalCells(o.ot, r)
	if err != nil {
		return err
	}
	return w.WriteOriginal(cells, r)
}

// close closes the records.
func (o originalRows) close() {
	if o.table != nil {
		_ = o.table.Close() // read only
	}
}

// refuse publishes the receipt of a refused file, finishes the job and moves
// the source to failed/. A refused file is a handled file: the task ends
// without error and is not retried; only a failure to publish is returned.
func (h *Handler) refuse(ctx context.Context, job lessee.Job, r *lessee.Error) error {
	return h.refuseAfter(ctx, job, r, false)
}

// refuseAfter is refuse; with storedRows the receipt first lists the rows
// that already have results, so a file given up part-way tells the
// submitter exactly which rows were applied.
func (h *Handler) refuseAfter(ctx context.Context, job lessee.Job, r *lessee.Error, storedRows bool) error {
	return h.refuseWith(ctx, job, r, func(w *receipt.Lines) error {
		if storedRows {
			return h.store.Results(ctx, job.ID, w.Write)
		}
		return nil
	})
}

// refuseSnapshot refuses a snapshot before anything is applied; past the
// threshold, its receipt lists the vehicles whose lessee it would have
// removed, after the refusal.
func (h *Handler) refuseSnapshot(ctx context.Context, job lessee.Job, r *lessee.Error) error {
	if r.Code != lessee.CodeTooManyRemovals {
		return h.refuse(ctx, job, r)
	}
	return h.refuseWith(ctx, job, r, nil, func(w *receipt.Lines) error {
		return h.writeAbsentList(ctx, job, r.Code, w)
	})
}

// refuseWith is refuse with the receipt's lines before the refusal
// (before) and after it (after), either of which may be nil.
func (h *Handler) refuseWith(ctx context.Context, job lessee.Job, r *lessee.Error, before func(*receipt.Lines) error, after ...func(*receipt.Lines) error) error {
	lang, err := h.language(ctx, job)
	if err != nil {
		return err
	}
	msg := message.ErrorText(lang, r)
	job.State, job.Code, job.Message = lessee.JobRefused, r.Code, msg
	if prefix := message.Format(lang, message.RowPrefix, r.Line, ""); r.Line > 0 && !strings.HasPrefix(msg, prefix) {
		job.Message = message.Format(lang, message.RowPrefix, r.Line, msg)
	}
	if job.Size > 0 || job.SHA256 != "" || job.Format != "" {
		// Keep what is known of the file (size, hash, format) with the job.
		if err := h.store.UpdateJobInfo(ctx, job); err != nil {
			return fmt.Errorf("update job: %w", err)
		}
	}
	job, won, err := h.stageAndFinish(ctx, job, nil, func(w *receipt.Lines) error {
		if before != nil {
			if err := before(w); err != nil {
				return err
			}
		}
		if err := w.WriteRefusal(r.Line, r.Code, msg); err != nil {
			return err
		}
		for _, a := range after {
			if err := a(w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || !won {
		return err
	}
	h.dropScratch(ctx, job)
	h.log.Warn("file refused", "job_id", job.ID, "key", job.Key, "submitter", job.Submitter, "code", r.Code, "reason", job.Message)
	return h.moveSource(ctx, job)
}

// stageAndFinish writes the job's receipts, with the lines lines writes,
// to the staging folder of its attempt; fences the job's end in for that
// attempt (refusal code and message, which receipts are the job's); and
// then carries it out: publishes the receipts and finishes the job. Of two
// attempts racing to the end, the one fenced in first publishes; the other
// removes what it staged and returns false. Nothing an attempt stages is
// visible to the submitter before it is fenced in, so a stale attempt can
// never show its receipt over a newer one's; and a job is finished only
// once its receipts are published. It returns the job as finished.
func (h *Handler) stageAndFinish(ctx context.Context, job lessee.Job, userHeader []string, lines func(*receipt.Lines) error) (lessee.Job, bool, error) {
	return h.stageAndFinishWith(ctx, job, func(folder string) error {
		return h.publisher().Stage(ctx, job, folder, userHeader, lines)
	})
}

// stageAndFinishWith is stageAndFinish with the receipts staged by stage.
func (h *Handler) stageAndFinishWith(ctx context.Context, job lessee.Job, stage func(folder string) error) (lessee.Job, bool, error) {
	staging := objectkey.StagingOf(job.ID, job.Attempt)
	p := h.publisher()
	if err := stage(staging); err != nil {
		return job, false, err
	}
	err := h.store.FenceAttempt(ctx, job.ID, job.Attempt, job.Code, job.Message)
	if lessee.ErrorCode(err) == lessee.ECONFLICT {
		h.log.Warn("another attempt took over the job; leaving the receipt to it",
			"job_id", job.ID, "key", job.Key, "attempt", job.Attempt)
		if err := p.Remove(ctx, job, staging); err != nil {
			h.log.Warn("could not remove a fenced attempt's receipts", "job_id", job.ID, "err", err)
		}
		return job, false, nil
	}
	if err != nil {
		return job, false, fmt.Errorf("finish job: %w", err)
	}
	job.PublishedAttempt = job.Attempt
	if err := h.publishFinished(ctx, job); err != nil {
		return job, false, err
	}
	job, err = h.finishJob(ctx, job)
	return job, err == nil, err
}

// finishJob marks a job whose receipts are published finished: refused
// when it ends with a refusal code, completed otherwise; tells OnFinished;
// and returns the job so.
func (h *Handler) finishJob(ctx context.Context, job lessee.Job) (lessee.Job, error) {
	job.State = lessee.JobCompleted
	if job.Code != "" {
		job.State = lessee.JobRefused
	}
	if err := h.store.FinishJob(ctx, job.ID, job.State, job.Code, job.Message); err != nil {
		return job, fmt.Errorf("finish job: %w", err)
	}
	if job.Finished.IsZero() {
		job.Finished = h.Now()
	}
	h.finished(job)
	return job, nil
}

// carryOut completes the end an earlier attempt decided for job: publishes
// the receipts it staged, finishes the job, cleans up and moves the source.
// Every step may have been done before.
func (h *Handler) carryOut(ctx context.Context, job lessee.Job) error {
	if err := h.publishFinished(ctx, job); err != nil {
		return err
	}
	if !finished(job.State) {
		var err error
		if job, err = h.finishJob(ctx, job); err != nil {
			return err
		}
	}
	h.dropScratch(ctx, job)
	return h.moveSource(ctx, job)
}

// publishFinished makes a decided job's receipts visible: the staged
// receipts of the attempt fenced in are copied to the job's history folder
// and, when it is the newest upload under its name, to the latest keys;
// then the staging folder is removed. Every step may run again.
func (h *Handler) publishFinished(ctx context.Context, job lessee.Job) error {
	if !job.Finished.IsZero() || job.PublishedAttempt == 0 {
		// A job is marked finished only after this ran to the end (or
		// it was finished before receipts had a history).
		return nil
	}
	p := h.publisher()
	staging := objectkey.StagingOf(job.ID, job.PublishedAttempt)
	if job.History == "" {
		if err := p.Promote(ctx, job, staging); err != nil {
			return fmt.Errorf("publish receipt: %w", err)
		}
		folder := objectkey.HistoryOf(job.Submitter, job.ID)
		if err := h.store.SetHistory(ctx, job.ID, folder); err != nil {
			return err
		}
		job.History = folder
	}
	// Again after a crash between the history and the latest keys.
	if err := h.showNewest(ctx, job); err != nil {
		return err
	}
	if err := p.Remove(ctx, job, staging); err != nil {
		return fmt.Errorf("publish receipt: %w", err)
	}
	return nil
}

// showNewest shows, under the latest receipt keys of job's name, the
// receipts of the newest upload under that name that has them. Every job
// of the name calls it after its own are in history. Two finishers may
// interleave: one reads the older job as newest, the newer job's finisher
// then publishes, and the first copies the older receipts over it (or a
// mix: the newer CSV beside the older summary). So after copying, the
// newest is read again and copied again until a read finds what was just
// copied. A finisher that stops thus finished all its copies before the
// newer job had a history, and that job's finisher copies after it; any
// later round copies the same newest set, summary last, so the latest
// keys end with the newest upload's whole receipt set.
func (h *Handler) showNewest(ctx context.Context, job lessee.Job) error {
	shown := ""
	for range maxShowRounds {
		newest, err := h.store.NewestPublished(ctx, job.Submitter, job.Name, job.DryRun)
		if err != nil {
			return fmt.Errorf("newest receipt of %s: %w", job.Name, err)
		}
		if newest.ID == shown {
			return nil
		}
		if err := h.publisher().ShowLatest(ctx, newest); err != nil {
			return fmt.Errorf("publish receipt: %w", err)
		}
		shown = newest.ID
	}
	// Uploads under the name keep overtaking this one; stopping without a
	// read that confirms the copy could leave an older set shown, so the
	// task is retried instead (publishing again is harmless).
	return fmt.Errorf("publish receipt of %s: newer uploads kept arriving after %d rounds", job.Name, maxShowRounds)
}

// maxShowRounds bounds showNewest: each extra round means yet another
// upload under the name got its history meanwhile.
const maxShowRounds = 10

// originalCells steps t to the record of result o and returns its cells as
// uploaded. The table and the stored results both run in index order with
// one outcome per record, so t only ever moves forward; a record that does
// not match is a fault, never papered over with another row's cells.
func originalCells(t ingest.OriginalTable, o lessee.Result) ([]string, error) {
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
	source := objectkey.SourceOf(job.Mode, job.DryRun)
	dst, folder := objectkey.ArchivedFrom(source, job.Submitter, job.Name), "archive"
	if job.State == lessee.JobRefused {
		dst, folder = objectkey.FailedFrom(source, job.Submitter, job.Name), "failed"
	}
	if job.PinnedETag != "" {
		return h.archivePinned(ctx, job, dst)
	}
	// The inbox may hold a newer upload under the same name by now (a retry
	// of this move, or an upload between the steps): leave it for its own
	// job. S3 offers no conditional delete, so a small window remains
	// between this check and the delete.
	if holds, err := h.inboxHolds(ctx, job); err != nil || !holds {
		return err
	}
	if err := h.objects.Copy(ctx, job.Key, dst); err != nil {
		if lessee.ErrorCode(err) == lessee.ENOTFOUND {
			return nil
		}
		return fmt.Errorf("move %s to %s: %w", job.Key, folder, err)
	}
	if err := h.objects.Delete(ctx, job.Key); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete %s: %w", job.Key, err)
	}
	return nil
}

// archivePinned moves the job's pinned copy, the bytes it processed, to
// dst, and then removes the upload from the inbox unless a newer upload
// replaced it meanwhile.
func (h *Handler) archivePinned(ctx context.Context, job lessee.Job, dst string) error {
	pinned := objectkey.PinnedKey(job.ID)
	if err := h.objects.Copy(ctx, pinned, dst); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("archive %s to %s: %w", job.Key, dst, err)
	} // not found: an earlier attempt archived it
	holds, err := h.inboxHolds(ctx, job)
	if err != nil {
		return err
	}
	if holds {
		if err := h.objects.Delete(ctx, job.Key); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
			return fmt.Errorf("delete %s: %w", job.Key, err)
		}
	}
	if err := h.objects.Delete(ctx, pinned); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete %s: %w", pinned, err)
	}
	return nil
}

// inboxHolds reports whether the job's inbox key still holds its upload:
// false when it is gone (moved by an earlier attempt, or deleted by the
// submitter) or a newer upload replaced it. Without the upload's ETag or a
// pinned copy's to compare, whatever is there is taken as the job's.
func (h *Handler) inboxHolds(ctx context.Context, job lessee.Job) (bool, error) {
	o, err := h.objects.Head(ctx, job.Key)
	if lessee.ErrorCode(err) == lessee.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("move %s: %w", job.Key, err)
	}
	etag, known := intake.VersionETag(job.Version)
	switch {
	case !known && job.PinnedETag == "",
		known && o.ETag == etag,
		job.PinnedETag != "" && o.ETag == job.PinnedETag:
		return true, nil
	}
	h.log.Warn("a newer upload replaced the file; leaving it for its own job", "job_id", job.ID, "key", job.Key)
	return false, nil
}

// quarantine moves an object whose key names no valid submitter out of the
// inbox, so operators can look at it; nobody can be sent a receipt.
func (h *Handler) quarantine(ctx context.Context, p lessee.Upload, pk objectkey.Parsed) error {
	id := intake.JobID(p.Bucket, p.Key, p.Version)
	dst := objectkey.Quarantined(id, pk.Name)
	job, err := h.store.BeginJob(ctx, lessee.Job{ID: id, Bucket: p.Bucket, Key: p.Key, Version: p.Version,
		Name: objectkey.SafeName(pk.Name), Size: p.Size, State: lessee.JobRunning})
	if err != nil {
		return fmt.Errorf("begin quarantine job: %w", err)
	}
	if err := h.objects.Copy(ctx, p.Key, dst); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("quarantine %s: %w", p.Key, err)
	}
	if err := h.objects.Delete(ctx, p.Key); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete %s: %w", p.Key, err)
	}
	if err := h.store.FinishJob(ctx, id, lessee.JobRefused, lessee.CodeInvalidKey, pk.Reason+"; moved to "+dst); err != nil {
		return fmt.Errorf("finish quarantine job: %w", err)
	}
	h.log.Warn("upload quarantined", "job_id", id, "key", p.Key, "to", dst, "reason", pk.Reason)
	if !finished(job.State) { // a retry after FinishJob told it already
		job.State, job.Code, job.Finished = lessee.JobRefused, lessee.CodeInvalidKey, h.Now()
		h.finished(job)
	}
	return nil
}

// giveUp records a file whose transient failures outlasted the retries: a
// receipt saying so, the source in failed/. Rows applied before stay
// applied; a re-upload reports them unchanged.
func (h *Handler) giveUp(ctx context.Context, p lessee.Upload, cause error) error {
	pk := objectkey.Parse(p.Key)
	if pk.Verdict != objectkey.OK {
		return nil
	}
	// The job may not exist yet if no attempt got that far.
	job, err := h.beginJob(ctx, p, pk)
	if err != nil {
		return err
	}
	if finished(job.State) || job.PublishedAttempt > 0 {
		return h.carryOut(ctx, job)
	}
	// Giving up takes over from any attempt still running.
	if job.Attempt, err = h.store.ClaimAttempt(ctx, job.ID); err != nil {
		return fmt.Errorf("claim attempt: %w", err)
	}
	if job.RowsTotal > 0 && job.RowsDone == job.RowsTotal {
		// Every row has its result; only publishing failed. Publish the
		// full receipt rather than throw the results away.
		return h.complete(ctx, job, upload{}, nil)
	}
	if job.RowsDone > 0 {
		// Rows with results are listed first: those marked applied are in
		// the registry; a re-upload reports them unchanged.
		return h.refuseAfter(ctx, job, message.Refuse(lessee.CodeProcessingFailed, 0,
			message.ProcessingStopped, job.RowsDone, job.RowsTotal), true)
	}
	return h.refuse(ctx, job, message.Refuse(lessee.CodeProcessingFailed, 0, message.ProcessingFailed))
}
