// Package receipt writes what a submitter gets back for a file: the receipt
// CSV with one line per input row, in input order, and the summary JSON.
//
// Receipts are opened by people in Excel, so the CSV starts with a UTF-8 BOM,
// ends its records with CRLF, and every cell that a spreadsheet would read
// as a formula is neutralised. Scripts join receipts to their own records
// on the echoed cells, so apart from that neutralisation those go out byte
// for byte as ingest read them, line breaks inside a cell included.
package receipt

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
)

// Header is the receipt CSV header. It is a public contract: scripts read
// receipts by these names, in this order.
var header = []string{
	"row", "reference", "operation", "registration_number", "vin",
	"lessee", "status", "code", "message", "change_id",
}

// Header returns the receipt CSV header.
func Header() []string { return append([]string(nil), header...) }

// StatusRefused is the status of the single receipt line of a refused file.
const StatusRefused = "refused"

const utf8BOM = "\ufeff"

// CSVWriter writes a receipt CSV: comma-separated, records ended by CRLF
// (what Excel on Windows writes and expects), a field quoted when it holds a
// comma, a quote or a line break, or begins with a space.
//
// Every cell goes out byte for byte as the writer is given it, line breaks
// inside a quoted field included. encoding/csv's Writer cannot do both: with
// UseCRLF it turns an LF inside a field into CRLF and drops a lone CR, so a
// reference sent as "a<LF>b" came back as "a<CR><LF>b" and an integration
// joining receipts on its reference missed the row. Hence this small writer,
// which quotes exactly as encoding/csv does and differs only there.
type CSVWriter struct {
	w      *bufio.Writer
	record []string
	line   []byte // the encoded record, reused
}

// NewCSVWriter writes the BOM and the header to w and returns a writer for
// the rows.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return nil, fmt.Errorf("write receipt bom: %w", err)
	}
	c := &CSVWriter{w: bufio.NewWriter(w), record: make([]string, len(header))}
	if err := c.put(header); err != nil {
		return nil, fmt.Errorf("write receipt header: %w", err)
	}
	return c, nil
}

// put writes one record.
func (c *CSVWriter) put(record []string) error {
	c.line = appendRecord(c.line[:0], record)
	_, err := c.w.Write(c.line)
	return err
}

// appendRecord appends record, encoded, and its CRLF to b.
func appendRecord(b []byte, record []string) []byte {
	for i, f := range record {
		if i > 0 {
			b = append(b, ',')
		}
		if !fieldNeedsQuotes(f) {
			b = append(b, f...)
			continue
		}
		b = append(b, '"')
		for {
			j := strings.IndexByte(f, '"')
			if j < 0 {
				break
			}
			b = append(b, f[:j+1]...)
			b = append(b, '"')
			f = f[j+1:]
		}
		b = append(b, f...)
		b = append(b, '"')
	}
	return append(b, '\r', '\n')
}

// fieldNeedsQuotes is encoding/csv's rule for a comma-separated field, so
// that every cell without a line break is written as before: quoted when it
// holds a comma, a quote, CR or LF, begins with a space, or is \. (which
// PostgreSQL's COPY would read as the end of data).
func fieldNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` || strings.ContainsAny(f, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(f)
	return unicode.IsSpace(r)
}

// Write appends the line of one row outcome.
func (c *CSVWriter) Write(o lessee.Result) error {
	r := c.record
	r[0] = rowCell(o.Line)
	r[1] = Neutralise(o.Echo.Reference)
	r[2] = Neutralise(o.Echo.Operation)
	r[3] = Neutralise(o.Echo.RegistrationNumber)
	r[4] = Neutralise(o.Echo.VIN)
	r[5] = Neutralise(o.Echo.Lessee)
	r[6] = string(o.Status)
	r[7] = string(o.Code)
	r[8] = Neutralise(o.Message)
	r[9] = o.ChangeID
	if err := c.put(r); err != nil {
		return fmt.Errorf("write receipt row %d: %w", o.Line, err)
	}
	return nil
}

// WriteRefusal writes the single line that tells why a whole file was
// refused. line is the row the problem was found on, or 0 for the file.
func (c *CSVWriter) WriteRefusal(line int, code lessee.Code, message string) error {
	r := c.record
	for i := range r {
		r[i] = ""
	}
	r[0] = rowCell(line)
	r[6] = StatusRefused
	r[7] = string(code)
	r[8] = Neutralise(message)
	if err := c.put(r); err != nil {
		return fmt.Errorf("write receipt refusal: %w", err)
	}
	return nil
}

// rowCell is the row cell of a receipt line: the row number the user's
// spreadsheet shows, or empty for a line of no row of the file (a
// snapshot's removal of a vehicle the file left out, a file-level
// refusal), whose Line is 0.
func rowCell(line int) string {
	if line <= 0 {
		return ""
	}
	return strconv.Itoa(line)
}

// Flush writes buffered lines and reports any write error.
func (c *CSVWriter) Flush() error {
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("flush receipt: %w", err)
	}
	return nil
}

// Neutralise makes a cell safe to open in a spreadsheet: a value that starts
// with a formula trigger (=, +, -, @, tab, CR) gets a leading apostrophe, which
// spreadsheets show as text (OWASP's advice for CSV injection).
func Neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Summary is the summary JSON of a processed or refused file. Its keys are a
// public contract.
type Summary struct {
	JobID          string         `json:"job_id"`
	Key            string         `json:"key"`
	Version        string         `json:"version"`
	SHA256         string         `json:"sha256"`
	Size           int64          `json:"size"`
	Format         string         `json:"format"`
	Status         string         `json:"status"` // completed or refused
	Code           string         `json:"code,omitempty"`
	Message        string         `json:"message,omitempty"`
	Rows           int            `json:"rows"`
	Applied        int            `json:"applied"`
	Unchanged      int            `json:"unchanged"`
	Rejected       int            `json:"rejected"`
	Codes          map[string]int `json:"codes"`
	IgnoredColumns []string       `json:"ignored_columns"`
	// Mode is "changes" (inbox/, dryrun/) or "snapshot" (snapshot/,
	// dryrun-snapshot/).
	Mode string `json:"mode"`
	// DryRun is true for a dry run (dryrun/, dryrun-snapshot/), whose
	// rows were judged but not applied; absent otherwise.
	DryRun bool `json:"dry_run,omitempty"`
	// Operations counts a snapshot's rows by derived operation (keep,
	// add, replace, remove; every one present, zero or not). Absent for
	// a change file.
	Operations map[string]int `json:"operations,omitzero"`
	Receipt    string         `json:"receipt"`
	// ReceiptXLSX is the key of the XLSX receipt an XLSX upload also gets
	// (see objectkey.ReceiptsFor); Publish sets it, after writing that receipt.
	ReceiptXLSX string `json:"receipt_xlsx,omitempty"`
	// History names this job's own receipts, kept under its job id for
	// the retention time whatever is uploaded later under the same name.
	History        *HistoryKeys `json:"history,omitempty"`
	Started        time.Time    `json:"started"`
	Finished       time.Time    `json:"finished"`
	DurationMillis int64        `json:"duration_ms"`
}

// HistoryKeys are the keys of one job's own receipts in its history folder.
type HistoryKeys struct {
	Receipt     string `json:"receipt"`
	ReceiptXLSX string `json:"receipt_xlsx,omitempty"`
	Summary     string `json:"summary"`
}

// SnapshotOperations are the operations a snapshot's rows are derived
// into; a snapshot's summary counts each of them, zero or not.
var SnapshotOperations = []lessee.Operation{lessee.OpKeep, lessee.OpAdd, lessee.OpReplace, lessee.OpRemove}

// NewSummary builds the summary of job, finished at finished.
func NewSummary(job lessee.Job, finished time.Time, receiptKey string) Summary {
	status := string(job.State)
	if job.State != lessee.JobRefused {
		status = string(lessee.JobCompleted)
	}
	codes := make(map[string]int, len(job.Codes))
	for c, n := range job.Codes {
		codes[string(c)] = n
	}
	ignored := job.IgnoredColumns
	if ignored == nil {
		ignored = []string{}
	}
	mode := job.Mode
	if mode == "" {
		mode = lessee.ModeChanges
	}
	var ops map[string]int // nil, and so absent, for a change file
	if mode == lessee.ModeSnapshot {
		ops = make(map[string]int, len(SnapshotOperations))
		for _, op := range SnapshotOperations {
			ops[string(op)] = 0
		}
		for op, n := range job.Operations {
			ops[string(op)] += n
		}
	}
	return Summary{
		JobID:          job.ID,
		Key:            job.Key,
		Version:        job.Version,
		SHA256:         job.SHA256,
		Size:           job.Size,
		Format:         string(job.Format),
		Status:         status,
		Code:           string(job.Code),
		Message:        job.Message,
		Rows:           job.Applied + job.Unchanged + job.Rejected,
		Applied:        job.Applied,
		Unchanged:      job.Unchanged,
		Rejected:       job.Rejected,
		Codes:          codes,
		IgnoredColumns: ignored,
		Mode:           string(mode),
		DryRun:         job.DryRun,
		Operations:     ops,
		Receipt:        receiptKey,
		Started:        job.Started.UTC(),
		Finished:       finished.UTC(),
		DurationMillis: finished.Sub(job.Started).Milliseconds(),
	}
}

// Marshal returns the summary as indented JSON.
func (s Summary) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal summary: %w", err)
	}
	return append(b, '\n'), nil
}
