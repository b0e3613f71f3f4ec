package ingest

import (
	"context"
	"fmt"
	"os"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// Limits bound what one file may cost. A zero or negative field means the
// default from DefaultLimits.
type Limits struct {
	MaxBytes     int64 // size of the file as uploaded
	MaxRows      int   // data records, blank rows and the header not counted
	MaxCellBytes int   // one cell, in UTF-8 bytes after decoding
	MaxColumns   int   // columns of the header and of any record

	// MaxUnzipBytes bounds the total uncompressed size of an XLSX (excelize
	// UnzipSizeLimit); past it the file is a zip bomb.
	MaxUnzipBytes int64
	// MaxUnzipXMLBytes is how large a worksheet or shared-string part may be
	// before excelize spills it to a temporary file instead of memory
	// (excelize UnzipXMLSizeLimit). It is a memory bound, not a refusal.
	MaxUnzipXMLBytes int64

	// Snapshot reads the file as a snapshot of a fleet (not a limit, but
	// it travels with them to every reader): it needs no operation column,
	// and its operation and end_date columns are ignored and listed with
	// the other ignored columns.
	Snapshot bool
}

// DefaultLimits returns limits safe for a shared worker.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:         200 << 20,
		MaxRows:          2_000_000,
		MaxCellBytes:     4 << 10,
		MaxColumns:       100,
		MaxUnzipBytes:    1 << 30,
		MaxUnzipXMLBytes: 16 << 20,
	}
}

// withDefaults fills unset fields so that a zero Limits never refuses
// everything.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = d.MaxRows
	}
	if l.MaxCellBytes <= 0 {
		l.MaxCellBytes = d.MaxCellBytes
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = d.MaxColumns
	}
	if l.MaxUnzipBytes <= 0 {
		l.MaxUnzipBytes = d.MaxUnzipBytes
	}
	if l.MaxUnzipXMLBytes <= 0 {
		l.MaxUnzipXMLBytes = d.MaxUnzipXMLBytes
	}
	// excelize rejects an XML limit above the unzip limit.
	if l.MaxUnzipXMLBytes > l.MaxUnzipBytes {
		l.MaxUnzipXMLBytes = l.MaxUnzipBytes
	}
	return l
}

// refuse returns a file-level refusal: the whole file is refused with code
// and no row is applied. The message is written for the person who uploaded
// the file; it never quotes a cell value, only header names (masked) and
// positions.
func refuse(code lessee.Code, line int, key message.Key, args ...any) *lessee.Error {
	return message.Refuse(code, line, key, args...)
}

// Info is what the first pass learns about a file.
type Info struct {
	Format lessee.Format
	// Rows is the number of data records. Only Scan counts them; Open leaves
	// it 0.
	Rows int
	// Columns holds the header name as written for each canonical column,
	// "" if the file has no such column.
	Columns [lessee.NumColumns]string
	// Header is the header row as written, every column in file order
	// (trailing empty cells dropped, identity numbers masked): what an XLSX
	// receipt repeats above the user's rows.
	Header []string
	// IgnoredColumns lists the header names that map to no canonical column,
	// as written (identity numbers masked), in file order.
	IgnoredColumns []string
	Delimiter      rune   // CSV only
	Encoding       string // CSV only: UTF-8, UTF-16LE, UTF-16BE or windows-1252
	HeaderLine     int    // spreadsheet row of the header
	// Spool is the record spool ScanSpooled wrote, or "" when it wrote none.
	Spool string `json:"-"`
}

// Table yields data records in file order. Blank rows are skipped; Index
// counts only the records yielded.
type Table interface {
	// Next returns the next record, io.EOF after the last one, or an error:
	// a *lessee.Error when the file breaks a rule further down than the header.
	Next() (lessee.RawRow, error)
	Close() error
}

// OriginalTable is a Table that also gives back each record as the file
// holds it, so that a receipt can repeat the user's rows, ignored columns
// included. Both readers implement it.
type OriginalTable interface {
	Table
	// Original returns the cells of the record Next last returned, in file
	// order and untrimmed, trailing empty cells dropped: text as written, an
	// XLSX date cell as YYYY-MM-DD, another number as the value stored. The
	// slice is valid until the next call to Next.
	Original() []string
}

var (
	_ OriginalTable = (*csvTable)(nil)
	_ OriginalTable = (*xlsxTable)(nil)
)

// Scan reads the whole file once without keeping it in memory: it detects the
// format from the bytes, decodes, reads the header, checks every limit and
// counts the data records. A file that cannot be read as a table yields a
// *lessee.Error as the error, with an Info that holds only the Format, when the
// bytes showed one (so that an XLSX upload can get an XLSX receipt).
func Scan(ctx context.Context, path string, limits Limits) (Info, error) {
	t, info, err := Open(ctx, path, limits)
	if err != nil {
		return info, err
	}
	return scanTable(t, info, nil)
}

// Open detects the format, reads the header and returns a Table positioned at
// the first data record. The returned Info has Rows 0: counting needs the
// whole file, which is Scan's job. On an error, Info holds only the Format,
// if known. The caller must Close the Table.
func Open(ctx context.Context, path string, limits Limits) (Table, Info, error) {
	limits = limits.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open upload: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("stat upload: %w", err)
	}
	if st.Size() > limits.MaxBytes {
		_ = f.Close()
		return nil, Info{}, refuse(lessee.CodeFileTooLarge, 0,
			message.FileBytes, st.Size(), limits.MaxBytes)
	}
	if st.Size() == 0 {
		_ = f.Close()
		return nil, Info{}, refuse(lessee.CodeMissingHeader, 0, message.FileEmpty)
	}
	kind, err := sniff(f)
	if err != nil {
		_ = f.Close()
		return nil, Info{}, err
	}
	switch kind {
	case kindXLSX:
		_ = f.Close() // excelize opens the path itself
		t, info, err := openXLSX(ctx, path, limits)
		if err != nil {
			return nil, Info{Format: lessee.FormatXLSX}, err
		}
		return t, info, nil
	case kindOLE2:
		defer func() { _ = f.Close() }() // only read
		return nil, Info{}, refuseOLE2(f)
	default:
		t, info, err := openCSV(ctx, f, limits)
		if err != nil {
			return nil, Info{Format: lessee.FormatCSV}, err
		}
		return t, info, nil
	}
}
