package receipt

import (
	"archive/zip"
	"compress/flate"
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// Writer is what both receipt formats offer: one line per row outcome, or the
// single line of a refused file.
type Writer interface {
	Write(o lessee.Result) error
	WriteRefusal(line int, code lessee.Code, message string) error
}

var (
	_ Writer = (*CSVWriter)(nil)
	_ Writer = (*XLSXWriter)(nil)
)

// SheetName is the name of the receipt workbook's only sheet.
const SheetName = "receipt"

// Fill and font of rejected and refused lines: Excel's own "Bad" cell style,
// which people already read as "look here".
const (
	rejectedFill = "FFC7CE"
	rejectedFont = "9C0006"
)

// XLSXOptions tunes an XLSX receipt.
type XLSXOptions struct {
	// TempDir is where excelize spills the sheet once it outgrows its
	// in-memory buffer (16 MiB); "" means os.TempDir.
	TempDir string
}

// XLSXWriter streams a receipt workbook with excelize's StreamWriter: rows
// go to a temporary file past a fixed buffer, never a whole sheet in
// memory. Every cell, the row number included, is an inline string cell
// with the text number format, never a number or a formula; user data is
// neutralised as in the CSV receipt. Rejected and refused lines are filled
// red.
//
// Two layouts share the writer. NewXLSXWriter gives the standard receipt
// columns (Header); NewXLSXOriginalWriter gives the row number, the user's
// own columns as uploaded, then status, code, message and change_id.
type XLSXWriter struct {
	f        *excelize.File
	sw       *excelize.StreamWriter
	next     int // sheet row of the next line
	width    int // columns of every line
	original int // user columns; 0 for the standard layout
	text     int // style ids
	bad      int
	vals     []any
	closed   bool
}

// NewXLSXWriter starts a receipt workbook with the standard receipt columns,
// the same as the receipt CSV's.
func NewXLSXWriter(opts XLSXOptions) (*XLSXWriter, error) {
	return newXLSXWriter(opts, header, 0)
}

// NewXLSXOriginalWriter starts a receipt workbook that repeats the user's
// rows: "row", the cells of the user's header as given, then "status",
// "code", "message" and "change_id". Header cells are masked and neutralised
// like any other cell.
func NewXLSXOriginalWriter(opts XLSXOptions, userHeader []string) (*XLSXWriter, error) {
	cols := make([]string, 0, len(userHeader)+5)
	cols = append(cols, "row")
	cols = append(cols, userHeader...)
	cols = append(cols, "status", "code", "message", "change_id")
	return newXLSXWriter(opts, cols, len(userHeader))
}

func newXLSXWriter(opts XLSXOptions, cols []string, original int) (w *XLSXWriter, err error) {
	f := excelize.NewFile(excelize.Options{TmpDir: opts.TempDir})
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	if err := f.SetSheetName("Sheet1", SheetName); err != nil {
		return nil, fmt.Errorf("name receipt sheet: %w", err)
	}
	const textFormat = 49 // "@": the cell is text, even after the user edits it
	text, err := f.NewStyle(&excelize.Style{NumFmt: textFormat})
	if err != nil {
		return nil, fmt.Errorf("receipt style: %w", err)
	}
	bad, err := f.NewStyle(&excelize.Style{
		NumFmt: textFormat,
		Fill:   excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{rejectedFill}},
		Font:   &excelize.Font{Color: rejectedFont},
	})
	if err != nil {
		return nil, fmt.Errorf("receipt style: %w", err)
	}
	bold, err := f.NewStyle(&excelize.Style{NumFmt: textFormat, Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, fmt.Errorf("receipt style: %w", err)
	}
	sw, err := f.NewStreamWriter(SheetName)
	if err != nil {
		return nil, fmt.Errorf("receipt sheet: %w", err)
	}
	// Column settings and panes must precede the first row.
	if err := sw.SetColWidth(1, 1, 6); err != nil {
		return nil, fmt.Errorf("receipt columns: %w", err)
	}
	if err := sw.SetColWidth(2, len(cols), 18); err != nil {
		return nil, fmt.Errorf("receipt columns: %w", err)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, fmt.Errorf("receipt panes: %w", err)
	}
	w = &XLSXWriter{f: f, sw: sw, next: 1, width: len(cols), original: original,
		text: text, bad: bad, vals: make([]any, len(cols))}
	for i, c := range cols {
		v := Neutralise(c)
		if i >= 1 && i <= original {
			v = userText(c)
		}
		w.vals[i] = excelize.Cell{StyleID: bold, Value: v}
	}
	if err := w.put(); err != nil {
		return nil, err
	}
	return w, nil
}

// userText makes one of the user's own cells safe for a receipt: any
// 11-digit run masked as a personal identity number could be (the writer
// does not know which column holds lessee ids), formula triggers
// neutralised. Echo values and messages come masked from validate.
func userText(s string) string {
	return Neutralise(ident.MaskText(s))
}

// put writes w.vals as the next sheet row.
func (w *XLSXWriter) put() error {
	if w.closed {
		return fmt.Errorf("write receipt row %d: writer closed", w.next)
	}
	cell, err := excelize.CoordinatesToCellName(1, w.next)
	if err != nil {
		return fmt.Errorf("write receipt row %d: %w", w.next, err)
	}
	if err := w.sw.SetRow(cell, w.vals); err != nil {
		return fmt.Errorf("write receipt row %d: %w", w.next, err)
	}
	w.next++
	return nil
}

// line fills w.vals for one receipt line: the row number, middle cells,
// then status, code, message and change_id, every one a string cell.
//
// The row number is text too, as the README promises of every cell: a
// script reading the workbook gets "12" as the receipt CSV has it, not the
// float 12 a number cell reads as, and the text format keeps it text when
// the user edits it.
func (w *XLSXWriter) line(row int, middle []string, user bool, o lessee.Result) error {
	style := w.text
	if o.Status == lessee.StatusRejected || string(o.Status) == StatusRefused {
		style = w.bad
	}
	w.vals[0] = excelize.Cell{StyleID: style, Value: rowCell(row)}
	i := 1
	for ; i-1 < len(middle) && i < w.width-4; i++ {
		v := Neutralise(middle[i-1])
		if user {
			v = userText(middle[i-1])
		}
		w.vals[i] = excelize.Cell{StyleID: style, Value: v}
	}
	for ; i < w.width-4; i++ {
		w.vals[i] = excelize.Cell{StyleID: style, Value: ""}
	}
	for j, v := range []string{string(o.Status), string(o.Code), o.Message, o.ChangeID} {
		w.vals[w.width-4+j] = excelize.Cell{StyleID: style, Value: Neutralise(v)}
	}
	return w.put()
}

// Write appends the line of one row outcome in the standard layout: the
// outcome's echo of the row. In the original layout it leaves the user's
// columns empty; use WriteOriginal there.
func (w *XLSXWriter) Write(o lessee.Result) error {
	if w.original > 0 {
		return w.line(o.Line, nil, false, o)
	}
	return w.line(o.Line, []string{o.Echo.Reference, o.Echo.Operation,
		o.Echo.RegistrationNumber, o.Echo.VIN, o.Echo.Lessee}, false, o)
}

// WriteOriginal appends the line of one row outcome with the user's cells of
// that row as uploaded (in the original layout; in the standard layout the
// cells are ignored and the echo written). Cells past the header's width are
// dropped: the outcome already says the row is ragged.
func (w *XLSXWriter) WriteOriginal(cells []string, o lessee.Result) error {
	if w.original == 0 {
		return w.Write(o)
	}
	return w.line(o.Line, cells, true, o)
}

// WriteRefusal writes the single line that tells why a whole file was
// refused. line is the row the problem was found on, or 0 for the file.
func (w *XLSXWriter) WriteRefusal(line int, code lessee.Code, message string) error {
	return w.line(line, nil, false, lessee.Result{Status: StatusRefused, Code: code, Message: message})
}

// Finish completes the workbook and writes it to out. The writer is closed
// afterwards, whatever the outcome.
//
// excelize's File.WriteTo assembles the whole workbook in a bytes.Buffer
// before writing any of it: a million-row receipt held 200 MB. Its zip
// writer is pointed at out instead, so the sheet streams from its
// temporary file to out and only the empty buffer is left to copy.
func (w *XLSXWriter) Finish(out io.Writer) error {
	defer w.Close()
	if err := w.sw.Flush(); err != nil {
		return fmt.Errorf("flush receipt sheet: %w", err)
	}
	w.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(out)
		// The fastest deflate level: a million-row receipt's sheet is
		// hundreds of MB of XML, and the default level spent most of the
		// receipt's time compressing it, for a file a few percent smaller.
		zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(w, flate.BestSpeed)
		})
		return zw
	})
	if _, err := w.f.WriteTo(io.Discard); err != nil {
		return fmt.Errorf("write receipt workbook: %w", err)
	}
	return nil
}

// Close releases the workbook's temporary files. Finish calls it.
func (w *XLSXWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close receipt workbook: %w", err)
	}
	return nil
}

// Results is a stream of row results in input order: it calls yield for
// each and stops at the first error.
type Results func(yield func(lessee.Result) error) error

// WriteXLSXReceipt writes a whole receipt workbook in the standard layout.
func WriteXLSXReceipt(out io.Writer, opts XLSXOptions, results Results) error {
	w, err := NewXLSXWriter(opts)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := results(w.Write); err != nil {
		return fmt.Errorf("write receipt: %w", err)
	}
	return w.Finish(out)
}

// OriginalRows is a stream of the user's rows, each with its outcome, in
// input order.
type OriginalRows func(yield func(cells []string, o lessee.Result) error) error

// WriteXLSX writes a whole receipt workbook that repeats the user's columns
// (see NewXLSXOriginalWriter).
func WriteXLSX(out io.Writer, opts XLSXOptions, userHeader []string, rows OriginalRows) error {
	w, err := NewXLSXOriginalWriter(opts, userHeader)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := rows(w.WriteOriginal); err != nil {
		return fmt.Errorf("write receipt: %w", err)
	}
	return w.Finish(out)
}
