package receipt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/objectkey"
)

// ObjectWriter writes, copies (server-side) and deletes objects.
type ObjectWriter interface {
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
	Copy(ctx context.Context, srcKey, dstKey string) error
	Delete(ctx context.Context, key string) error
}

// TempPrefix begins the names of the temporary files a Publisher writes
// receipts into before uploading them; a process killed mid-way leaves them
// behind, and its successor removes them at start.
const TempPrefix = "lessee-receipt-"

// Content types of the published objects.
const (
	contentTypeCSV  = "text/csv; charset=utf-8"
	contentTypeXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	contentTypeJSON = "application/json"
)

// Publisher publishes a job's receipts: the receipt CSV, for an XLSX upload
// an XLSX receipt too, and then the summary JSON, each as one object write
// so that a reader never sees half of one.
type Publisher struct {
	objects ObjectWriter
	tempDir string // "" means os.TempDir
	now     func() time.Time
}

// NewPublisher returns a publisher writing through objects, spooling in
// tempDir and stamping summaries with now.
func NewPublisher(objects ObjectWriter, tempDir string, now func() time.Time) *Publisher {
	return &Publisher{objects: objects, tempDir: tempDir, now: now}
}

// Lines writes every receipt line of a job to the receipt CSV and, for an
// XLSX upload, to the XLSX receipt.
type Lines struct {
	csv  *CSVWriter
	xlsx *XLSXWriter // nil unless the upload is XLSX
	// dryRun blanks every change id: a dry run changes nothing, so no
	// line of its receipt may name a change.
	dryRun bool
}

// Write writes the line of one row result.
func (w *Lines) Write(r lessee.Result) error {
	if w.dryRun {
		r.ChangeID = ""
	}
	if err := w.csv.Write(r); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.Write(r)
	}
	return nil
}

// WriteOriginal writes r to the receipt CSV, and r beside the user's cells
// of its row to the XLSX receipt.
func (w *Lines) WriteOriginal(cells []string, r lessee.Result) error {
	if w.dryRun {
		r.ChangeID = ""
	}
	if err := w.csv.Write(r); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.WriteOriginal(cells, r)
	}
	return nil
}

// WriteRefusal writes the line that tells why a whole file was refused.
func (w *Lines) WriteRefusal(line int, code lessee.Code, message string) error {
	if err := w.csv.WriteRefusal(line, code, message); err != nil {
		return err
	}
	if w.xlsx != nil {
		return w.xlsx.WriteRefusal(line, code, message)
	}
	return nil
}

// Publish writes job's receipts, with the lines lines writes, and then its
// summary, into the job's history folder (objectkey.HistoryFor), and then
// shows them under the latest keys (ShowLatest). It is Stage into the
// history folder: for a caller that need not fence concurrent attempts.
func (p *Publisher) Publish(ctx context.Context, job lessee.Job, userHeader []string, lines func(*Lines) error) error {
	if err := p.Stage(ctx, job, objectkey.HistoryOf(job.Submitter, job.ID), userHeader, lines); err != nil {
		return err
	}
	return p.ShowLatest(ctx, job)
}

// Stage writes job's receipts, with the lines lines writes, and then its
// summary into folder, under the file names of objectkey.ReceiptsFor; the
// summary comes last, so its presence means the receipts beside it are
// complete. The summary names the latest receipt keys (receipt,
// receipt_xlsx) and the job's own in its history folder (history). The
// XLSX receipt of an XLSX upload repeats the user's columns under
// userHeader, or has the standard columns when userHeader is nil. A
// snapshot's XLSX receipt always has the standard columns: it must show
// each row's derived operation, and its removals of vehicles the file left
// out have no cells of the user's.
func (p *Publisher) Stage(ctx context.Context, job lessee.Job, folder string, userHeader []string, lines func(*Lines) error) error {
	d, err := p.NewDraft(job, userHeader)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := lines(d.Lines()); err != nil {
		return fmt.Errorf("write receipt: %w", err)
	}
	return p.StageDraft(ctx, d, job, folder)
}

// Draft is a job's receipt files being written on local disk, before they
// are staged: a job may write its lines as its chunks commit, and stage
// them once the last has (StageDraft). Close removes the files.
type Draft struct {
	csvFile *os.File
	csvw    *CSVWriter
	xlsxw   *XLSXWriter // nil unless the upload is XLSX
	lines   *Lines
}

// NewDraft starts job's receipt files (see Stage for userHeader).
func (p *Publisher) NewDraft(job lessee.Job, userHeader []string) (d *Draft, err error) {
	if job.Mode == lessee.ModeSnapshot {
		userHeader = nil
	}
	d = &Draft{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.csvFile, err = os.CreateTemp(p.tempDir, TempPrefix+"*"); err != nil {
		return nil, fmt.Errorf("create receipt file: %w", err)
	}
	if d.csvw, err = NewCSVWriter(d.csvFile); err != nil {
		return nil, err
	}
	if job.Format == lessee.FormatXLSX {
		opts := XLSXOptions{TempDir: p.tempDir}
		if userHeader != nil {
			d.xlsxw, err = NewXLSXOriginalWriter(opts, userHeader)
		} else {
			d.xlsxw, err = NewXLSXWriter(opts)
		}
		if err != nil {
			return nil, err
		}
	}
	d.lines = &Lines{csv: d.csvw, xlsx: d.xlsxw, dryRun: job.DryRun}
	return d, nil
}

// Lines is where the draft's receipt lines are written, in row order.
func (d *Draft) Lines() *Lines { return d.lines }

// Close removes the draft's files; a staged draft has uploaded them.
func (d *Draft) Close() {
	if d.xlsxw != nil {
		_ = d.xlsxw.Close() // only its temporary files are left to release
	}
	if d.csvFile != nil {
		_ = d.csvFile.Close() // a spool: put from, then removed
		_ = os.Remove(d.csvFile.Name())
	}
}

// StageDraft uploads the draft's receipts and then job's summary into
// folder, as Stage does; the draft must hold every line of job, and have
// been started for it (NewDraft).
func (p *Publisher) StageDraft(ctx context.Context, d *Draft, job lessee.Job, folder string) error {
	latest := objectkey.ReceiptsFor(job.Submitter, job.Name, job.DryRun)
	staged := latest.In(folder)
	if err := p.objects.Delete(ctx, staged.Summary); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete old summary: %w", err)
	}
	if err := d.csvw.Flush(); err != nil {
		return err
	}
	if err := p.putFile(ctx, staged.CSV, d.csvFile, contentTypeCSV); err != nil {
		return err
	}
	summary := NewSummary(job, p.now(), latest.CSV)
	history := objectkey.HistoryFor(job.Submitter, job.ID, job.Name, job.DryRun)
	summary.History = &HistoryKeys{Receipt: history.CSV, Summary: history.Summary}
	if d.xlsxw != nil {
		xlsxFile, err := os.CreateTemp(p.tempDir, TempPrefix+"*.xlsx")
		if err != nil {
			return fmt.Errorf("create receipt file: %w", err)
		}
		defer os.Remove(xlsxFile.Name())
		defer func() { _ = xlsxFile.Close() }() // a spool: put from, then removed
		if err := d.xlsxw.Finish(xlsxFile); err != nil {
			return err
		}
		summary.ReceiptXLSX, summary.History.ReceiptXLSX = latest.XLSX, history.XLSX
		if err := p.putFile(ctx, staged.XLSX, xlsxFile, contentTypeXLSX); err != nil {
			return err
		}
	}
	b, err := summary.Marshal()
	if err != nil {
		return err
	}
	if err := p.objects.Put(ctx, staged.Summary, bytes.NewReader(b), int64(len(b)), contentTypeJSON); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	return nil
}

// Promote copies the receipts staged in folder into job's history folder,
// server-side, summary last. Copying again copies the same bytes.
func (p *Publisher) Promote(ctx context.Context, job lessee.Job, folder string) error {
	history := objectkey.HistoryFor(job.Submitter, job.ID, job.Name, job.DryRun)
	return p.copyAll(ctx, job, objectkey.ReceiptsFor(job.Submitter, job.Name, job.DryRun).In(folder), history)
}

// ShowLatest copies job's receipts from its history folder to the latest
// keys of its name, server-side: the latest summary is deleted first and
// copied last, so a summary present always belongs to the receipts beside
// it.
func (p *Publisher) ShowLatest(ctx context.Context, job lessee.Job) error {
	history := objectkey.HistoryFor(job.Submitter, job.ID, job.Name, job.DryRun)
	latest := objectkey.ReceiptsFor(job.Submitter, job.Name, job.DryRun)
	if err := p.objects.Delete(ctx, latest.Summary); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete old summary: %w", err)
	}
	return p.copyAll(ctx, job, history, latest)
}

// copyAll copies a job's receipt, XLSX receipt (for an XLSX upload) and
// summary, in that order.
func (p *Publisher) copyAll(ctx context.Context, job lessee.Job, from, to objectkey.ReceiptKeys) error {
	pairs := [][2]string{{from.CSV, to.CSV}}
	if job.Format == lessee.FormatXLSX {
		pairs = append(pairs, [2]string{from.XLSX, to.XLSX})
	}
	pairs = append(pairs, [2]string{from.Summary, to.Summary})
	for _, pr := range pairs {
		if err := p.objects.Copy(ctx, pr[0], pr[1]); err != nil {
			return fmt.Errorf("copy receipt %s: %w", pr[0], err)
		}
	}
	return nil
}

// Remove deletes the receipts in folder (a staging or history folder).
func (p *Publisher) Remove(ctx context.Context, job lessee.Job, folder string) error {
	keys := objectkey.ReceiptsFor(job.Submitter, job.Name, job.DryRun).In(folder)
	// The summary first: a folder with its summary has all its receipts.
	for _, k := range []string{keys.Summary, keys.CSV, keys.XLSX} {
		if err := p.objects.Delete(ctx, k); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
			return fmt.Errorf("remove receipt %s: %w", k, err)
		}
	}
	return nil
}

// putFile uploads what has been written to f as one object.
func (p *Publisher) putFile(ctx context.Context, key string, f *os.File, contentType string) error {
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("size %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind %s: %w", key, err)
	}
	if err := p.objects.Put(ctx, key, f, size, contentType); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
