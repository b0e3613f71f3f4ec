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

// ObjectWriter writes and deletes objects.
type ObjectWriter interface {
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
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
// summary, under objectkey.ReceiptsFor (a dry run's carry ".dryrun", so
// they never replace a real upload's). The summary comes last: its
// presence means the receipts beside it are complete, and a summary of an
// earlier upload with the same name is deleted first, so a summary present
// always belongs to the receipts beside it. The XLSX receipt of an XLSX
// upload repeats the user's columns under userHeader, or has the standard
// columns when userHeader is nil. A snapshot's XLSX receipt always has the
// standard columns: it must show each row's derived operation, and its
// removals of vehicles the file left out have no cells of the user's.
func (p *Publisher) Publish(ctx context.Context, job lessee.Job, userHeader []string, lines func(*Lines) error) error {
	keys := objectkey.ReceiptsFor(job.Submitter, job.Name, job.DryRun)
	receiptKey, summaryKey := keys.CSV, keys.Summary
	if job.Mode == lessee.ModeSnapshot {
		userHeader = nil
	}
	if err := p.objects.Delete(ctx, summaryKey); err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		return fmt.Errorf("delete old summary: %w", err)
	}
	csvFile, err := os.CreateTemp(p.tempDir, TempPrefix+"*")
	if err != nil {
		return fmt.Errorf("create receipt file: %w", err)
	}
	defer os.Remove(csvFile.Name())
	defer func() { _ = csvFile.Close() }() // a spool: put from, then removed
	csvw, err := NewCSVWriter(csvFile)
	if err != nil {
		return err
	}
	var xlsxw *XLSXWriter
	if job.Format == lessee.FormatXLSX {
		opts := XLSXOptions{TempDir: p.tempDir}
		if userHeader != nil {
			xlsxw, err = NewXLSXOriginalWriter(opts, userHeader)
		} else {
			xlsxw, err = NewXLSXWriter(opts)
		}
		if err != nil {
			return err
		}
		defer xlsxw.Close()
	}
	if err := lines(&Lines{csv: csvw, xlsx: xlsxw, dryRun: job.DryRun}); err != nil {
		return fmt.Errorf("write receipt: %w", err)
	}
	if err := csvw.Flush(); err != nil {
		return err
	}
	if err := p.putFile(ctx, receiptKey, csvFile, contentTypeCSV); err != nil {
		return err
	}
	summary := NewSummary(job, p.now(), receiptKey)
	if xlsxw != nil {
		xlsxFile, err := os.CreateTemp(p.tempDir, TempPrefix+"*.xlsx")
		if err != nil {
			return fmt.Errorf("create receipt file: %w", err)
		}
		defer os.Remove(xlsxFile.Name())
		defer func() { _ = xlsxFile.Close() }() // a spool: put from, then removed
		if err := xlsxw.Finish(xlsxFile); err != nil {
			return err
		}
		summary.ReceiptXLSX = keys.XLSX
		if err := p.putFile(ctx, summary.ReceiptXLSX, xlsxFile, contentTypeXLSX); err != nil {
			return err
		}
	}
	b, err := summary.Marshal()
	if err != nil {
		return err
	}
	if err := p.objects.Put(ctx, summaryKey, bytes.NewReader(b), int64(len(b)), contentTypeJSON); err != nil {
		return fmt.Errorf("put summary: %w", err)
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
