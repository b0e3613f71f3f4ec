package ingest

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/net/html/charset"

	"github.com/fleetreg/lessee"
)

// xlsxTable streams one worksheet. Values come from excelize's row iterator
// with raw cell values; excelize does not say how a cell is typed, so a
// second, light reader walks the same worksheet XML for each cell's type
// (t) and style (s) attributes, which tell text from number from date.
type xlsxTable struct {
	ctx      context.Context
	zr       *zip.ReadCloser
	f        *excelize.File
	rows     *excelize.Rows
	types    *cellTypes
	limits   Limits
	date1904 bool
	isDate   map[int]bool // style index -> date format, filled lazily
	head     *header
	rowNum   int      // sheet row number of the row last read
	orig     []string // the record Next last returned
	index    int
	err      error
	closed   bool
}

func openXLSX(ctx context.Context, p string, limits Limits) (Table, Info, error) {
	t := &xlsxTable{ctx: ctx, limits: limits, isDate: map[int]bool{}}
	info, err := t.open(p)
	if err != nil {
		_ = t.Close()
		return nil, Info{}, err
	}
	return t, info, nil
}

func notWorkbook() *Refusal {
	return refuse(lessee.CodeUnsupportedFormat, 0,
		"the file is a ZIP archive but not a readable .xlsx workbook; save it as .xlsx or CSV")
}

func expandsTooLarge(limits Limits) *Refusal {
	return refuse(lessee.CodeExpandsTooLarge, 0,
		"the workbook expands to more than %d bytes when unzipped; remove unused sheets, images and formatting or split the file",
		limits.MaxUnzipBytes)
}

func (t *xlsxTable) open(p string) (Info, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return Info{}, notWorkbook()
	}
	t.zr = zr
	// Checked here from the central directory so that a zip bomb is refused
	// before excelize inflates anything; archive/zip refuses an entry that
	// inflates past its declared size, so the sum cannot be lied about.
	var total uint64
	for _, zf := range zr.File {
		total += zf.UncompressedSize64
		if total > uint64(t.limits.MaxUnzipBytes) || total < zf.UncompressedSize64 {
			return Info{}, expandsTooLarge(t.limits)
		}
	}
	f, err := excelize.OpenFile(p, excelize.Options{
		UnzipSizeLimit:    t.limits.MaxUnzipBytes,
		UnzipXMLSizeLimit: t.limits.MaxUnzipXMLBytes,
	})
	if f != nil {
		t.f = f
	}
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "unzip size exceeds"):
			// excelize has no sentinel for this one.
			return Info{}, expandsTooLarge(t.limits)
		case errors.Is(err, excelize.ErrWorkbookPassword), errors.Is(err, excelize.ErrWorkbookFileFormat):
			return Info{}, refuse(lessee.CodeEncryptedWorkbook, 0,
				"the workbook is password protected; save it without a password")
		}
		return Info{}, notWorkbook()
	}
	if f.WorkBook == nil {
		return Info{}, notWorkbook()
	}
	sheet := ""
	for _, s := range f.WorkBook.Sheets.Sheet {
		if sheet == "" {
			sheet = s.Name
		}
		if strings.EqualFold(strings.TrimSpace(s.Name), "lessees") {
			sheet = s.Name
			break
		}
	}
	if sheet == "" {
		return Info{}, refuse(lessee.CodeMissingHeader, 0, "the workbook has no sheets")
	}
	if props, err := f.GetWorkbookProps(); err == nil && props.Date1904 != nil {
		t.date1904 = *props.Date1904
	}
	t.rows, err = f.Rows(sheet)
	if err != nil {
		return Info{}, refuse(lessee.CodeUnsupportedFormat, 0,
			"sheet %q cannot be read as a table (is it a chart sheet?)", maskDigits(sheet))
	}
	part, err := sheetPart(&zr.Reader, f, sheet)
	if err != nil {
		return Info{}, err
	}
	if t.types, err = newCellTypes(part, t.limits.MaxColumns); err != nil {
		return Info{}, err
	}

	for {
		cells, _, line, err := t.readRow()
		if errors.Is(err, io.EOF) {
			return Info{}, refuse(lessee.CodeMissingHeader, 0,
				"sheet %q has no header row; the first row must name the columns", maskDigits(sheet))
		}
		if err != nil {
			return Info{}, err
		}
		if len(cells) == 0 {
			continue
		}
		h, err := mapHeader(cells, line, t.limits)
		if err != nil {
			return Info{}, err
		}
		t.head = h
		info := h.info
		info.Format = lessee.FormatXLSX
		return info, nil
	}
}

func (t *xlsxTable) Next() (lessee.RawRow, error) {
	if t.err != nil {
		return lessee.RawRow{}, t.err
	}
	row, err := t.next()
	if err != nil {
		t.err = err
	}
	return row, err
}

func (t *xlsxTable) next() (lessee.RawRow, error) {
	t.orig = nil
	for {
		cells, kinds, line, err := t.readRow()
		if err != nil {
			return lessee.RawRow{}, err
		}
		if len(cells) == 0 {
			continue
		}
		if t.index >= t.limits.MaxRows {
			return lessee.RawRow{}, refuse(lessee.CodeTooManyRows, line,
				"the sheet has more than %d data rows; split it into smaller files", t.limits.MaxRows)
		}
		row, err := makeTypedRow(t.head, cells, kinds, t.index, line, t.limits)
		if err != nil {
			return lessee.RawRow{}, err
		}
		t.index++
		t.orig = cells
		return row, nil
	}
}

// readRow returns the next sheet row's cells (trailing empty ones trimmed),
// their kinds and the sheet row number. excelize's iterator steps through
// every row number, empty ones included, so counting its steps gives the row
// number.
func (t *xlsxTable) readRow() ([]string, []lessee.CellKind, int, error) {
	if !t.rows.Next() {
		if t.rows.Error() != nil {
			// Only a row number past Excel's 1,048,576 gets here.
			return nil, nil, 0, damaged(t.rowNum)
		}
		// excelize ends quietly on broken XML; the type reader does not, and
		// must also have run out of rows, or the sheet was cut short.
		if err := t.types.drain(t.rowNum); err != nil {
			return nil, nil, 0, err
		}
		return nil, nil, 0, io.EOF
	}
	t.rowNum++
	if t.rowNum%ctxEvery == 0 {
		if err := t.ctx.Err(); err != nil {
			return nil, nil, 0, err
		}
	}
	cols, err := t.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, nil, 0, refuse(lessee.CodeUnsupportedFormat, t.rowNum,
			"row %d cannot be read: %v", t.rowNum, err)
	}
	cols = trimTrailing(cols)
	if len(cols) == 0 {
		return nil, nil, t.rowNum, nil
	}
	types, err := t.types.row(t.rowNum)
	if err != nil {
		return nil, nil, 0, err
	}
	kinds := make([]lessee.CellKind, len(cols))
	for i := range cols {
		if i < len(types) {
			cols[i], kinds[i] = t.typed(cols[i], types[i])
		}
	}
	return cols, kinds, t.rowNum, nil
}

// typed turns a raw cell value into the value and kind validate gets.
func (t *xlsxTable) typed(raw string, ct cellType) (string, lessee.CellKind) {
	switch ct.t {
	case "s", "inlineStr", "str", "e":
		return raw, lessee.CellText
	case "b":
		switch raw {
		case "1":
			return "TRUE", lessee.CellText
		case "0":
			return "FALSE", lessee.CellText
		}
		return raw, lessee.CellText
	case "d": // an ISO 8601 date cell, rare outside Strict OOXML
		d, _, _ := strings.Cut(strings.TrimSpace(raw), "T")
		if _, err := time.Parse(time.DateOnly, d); err == nil {
			return d, lessee.CellDate
		}
		return raw, lessee.CellText
	case "", "n":
		if !ct.known {
			return raw, lessee.CellText
		}
		if t.dateStyle(ct.s) {
			if d, ok := serialDate(raw, t.date1904); ok {
				return d, lessee.CellDate
			}
		}
		return raw, lessee.CellNumber
	}
	return raw, lessee.CellText
}

// dateStyle reports whether cell style s formats numbers as dates.
func (t *xlsxTable) dateStyle(s int) bool {
	if d, ok := t.isDate[s]; ok {
		return d
	}
	d := false
	st := t.f.Styles
	if st != nil && st.CellXfs != nil && s >= 0 && s < len(st.CellXfs.Xf) && st.CellXfs.Xf[s].NumFmtID != nil {
		id := *st.CellXfs.Xf[s].NumFmtID
		d = builtinDateFormat(id)
		if st.NumFmts != nil {
			for _, nf := range st.NumFmts.NumFmt {
				if nf != nil && nf.NumFmtID == id {
					d = dateFormatCode(nf.FormatCode)
				}
			}
		}
	}
	if len(t.isDate) < 1<<16 { // a hostile styles part cannot grow this forever
		t.isDate[s] = d
	}
	return d
}

// builtinDateFormat reports the built-in number formats that show a date:
// 14-17 and 22 everywhere, 27-36 and 50-58 in East Asian locales. Time-only
// formats (18-21, 45-47) are numbers here.
func builtinDateFormat(id int) bool {
	return id >= 14 && id <= 17 || id == 22 || id >= 27 && id <= 36 || id >= 50 && id <= 58
}

// dateFormatCode reports whether a custom number format shows a date: its
// first section, without literals, escapes and bracketed parts, holds a day
// or year, or a month without hours or seconds ("mm" alone is ambiguous
// with minutes only next to them).
func dateFormatCode(code string) bool {
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case inQuote:
			inQuote = c != '"'
		case c == '"':
			inQuote = true
		case c == '[':
			end := strings.IndexByte(code[i:], ']')
			if end < 0 {
				end = len(code) - i
			}
			// [h], [mm], [ss] are elapsed time and count as time; colours,
			// conditions and locales ([Red], [<0], [$-414]) say nothing.
			if in := strings.ToLower(code[i+1 : i+end]); in != "" && strings.Trim(in, "hms") == "" {
				b.WriteString(in)
			}
			i += end
		case c == '\\', c == '_', c == '*':
			i++ // the next character is literal or padding
		case c == ';':
			i = len(code) // first section only
		default:
			b.WriteByte(c | 0x20) // ASCII lower case; others do not matter
		}
	}
	s := b.String()
	if strings.ContainsAny(s, "yd") {
		return true
	}
	return strings.Contains(s, "m") && !strings.ContainsAny(s, "hs")
}

// serialDate converts an Excel date serial to YYYY-MM-DD, ignoring the time
// of day (rounded to the second first, as Excel displays it).
func serialDate(raw string, date1904 bool) (string, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 2958465 { // 9999-12-31
		return "", false
	}
	days := int(math.Floor(v + 0.5/86400))
	var d time.Time
	switch {
	case date1904:
		d = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	case days >= 61:
		d = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	case days >= 1 && days < 60:
		// Excel counts a 29 February 1900 that never was; before it the
		// epoch is one day later.
		d = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	default:
		return "", false // 0 and the phantom 1900-02-29
	}
	return d.Format(time.DateOnly), true
}

// Original implements OriginalTable.
func (t *xlsxTable) Original() []string { return t.orig }

func (t *xlsxTable) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.rows != nil {
		if err := t.rows.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close rows: %w", err))
		}
	}
	if t.types != nil {
		errs = append(errs, t.types.Close())
	}
	if t.f != nil {
		if err := t.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close workbook: %w", err))
		}
	}
	if t.zr != nil {
		errs = append(errs, t.zr.Close())
	}
	return errors.Join(errs...)
}

// sheetPart finds the ZIP entry of a sheet's XML the way excelize does: the
// package relationships name the workbook part, whose relationships name the
// sheet part.
func sheetPart(zr *zip.Reader, f *excelize.File, sheet string) (*zip.File, error) {
	rid := ""
	for _, s := range f.WorkBook.Sheets.Sheet {
		if s.Name == sheet {
			rid = s.ID
			break
		}
	}
	wb := "xl/workbook.xml"
	if rels, err := readRels(zr, "_rels/.rels"); err == nil {
		for _, r := range rels.Rel {
			if strings.HasSuffix(r.Type, "/officeDocument") {
				wb = strings.TrimPrefix(r.Target, "/")
				break
			}
		}
	}
	rels, err := readRels(zr, path.Join(path.Dir(wb), "_rels", path.Base(wb)+".rels"))
	if err != nil {
		return nil, notWorkbook()
	}
	for _, r := range rels.Rel {
		if r.ID != rid || rid == "" {
			continue
		}
		target := strings.ReplaceAll(r.Target, "\\", "/")
		name := path.Join(path.Dir(wb), target)
		if strings.HasPrefix(target, "/") {
			name = path.Clean(target)
		}
		if zf := zipEntry(zr, strings.TrimPrefix(name, "/")); zf != nil {
			return zf, nil
		}
	}
	return nil, notWorkbook()
}

func zipEntry(zr *zip.Reader, name string) *zip.File {
	for _, zf := range zr.File {
		if strings.EqualFold(strings.ReplaceAll(zf.Name, "\\", "/"), name) {
			return zf
		}
	}
	return nil
}

type relationships struct {
	Rel []struct {
		ID     string `xml:"Id,attr"`
		Target string `xml:"Target,attr"`
		Type   string `xml:"Type,attr"`
	} `xml:"Relationship"`
}

func readRels(zr *zip.Reader, name string) (*relationships, error) {
	zf := zipEntry(zr, name)
	if zf == nil {
		return nil, fmt.Errorf("no part %s", name)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("open part %s: %w", name, err)
	}
	defer rc.Close()
	var rels relationships
	dec := xml.NewDecoder(io.LimitReader(rc, 16<<20))
	dec.CharsetReader = charset.NewReaderLabel
	if err := dec.Decode(&rels); err != nil {
		return nil, fmt.Errorf("parse part %s: %w", name, err)
	}
	return &rels, nil
}

// cellType is what the worksheet XML says about one cell.
type cellType struct {
	t     string // the t attribute: "", n, s, str, inlineStr, b, e, d
	s     int    // the s attribute: style index
	known bool
}

// maxCol is the last column a worksheet can have (XFD).
const maxCol = 16384

// cellTypes walks a worksheet's XML for the t and s attributes of each cell,
// one row at a time, in step with excelize's iterator. The walk runs ahead
// in its own goroutine: it costs half as much again as excelize's own, and
// the first pass of a large workbook otherwise waits for both on one core.
type cellTypes struct {
	rc      io.ReadCloser
	rows    chan typedRow // read ahead by walk; closed at the end
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when walk has returned

	num  int        // row number of cur
	cur  []cellType // by 0-based column
	done bool
}

// typedRow is one <row> element's cell types, or the error that ended the
// walk.
type typedRow struct {
	num   int
	types []cellType
	err   error
}

// typesAhead is how many rows the walk may run ahead of excelize.
const typesAhead = 256

// newCellTypes starts the walk of a worksheet part, keeping the types of
// the first maxCols columns: a record with more is refused anyway, and the
// rows read ahead stay small whatever columns a hostile sheet names.
func newCellTypes(zf *zip.File, maxCols int) (*cellTypes, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, notWorkbook()
	}
	dec := xml.NewDecoder(rc)
	dec.CharsetReader = charset.NewReaderLabel
	c := &cellTypes{rc: rc, rows: make(chan typedRow, typesAhead), stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.walk(&typeWalker{dec: dec, stop: c.stop, maxCols: min(maxCols, maxCol)})
	return c, nil
}

// walk sends every row's types, then closes c.rows; an error is sent as the
// last row. It returns early when Close stops it.
func (c *cellTypes) walk(w *typeWalker) {
	defer close(c.stopped)
	defer close(c.rows)
	for {
		err := w.advance()
		if errors.Is(err, errWalkStopped) || (err == nil && w.done) {
			return
		}
		r := typedRow{num: w.num, types: slices.Clone(w.cur), err: err}
		select {
		case c.rows <- r:
		case <-c.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// damaged refuses a worksheet that cannot be read past row (0: from its
// start), which includes a ZIP entry that inflates past its declared size.
func damaged(row int) *Refusal {
	if row <= 0 {
		return refuse(lessee.CodeUnsupportedFormat, 0,
			"the worksheet is damaged; open and save it again in Excel")
	}
	return refuse(lessee.CodeUnsupportedFormat, row,
		"the worksheet is damaged after row %d; open and save it again in Excel", row)
}

// row returns the types of sheet row n, or nil if the XML has no such row.
func (c *cellTypes) row(n int) ([]cellType, error) {
	for !c.done && c.num < n {
		if err := c.advance(); err != nil {
			return nil, err
		}
	}
	if c.num == n {
		return c.cur, nil
	}
	return nil, nil
}

// drain checks that nothing but the end of the sheet follows row last.
func (c *cellTypes) drain(last int) error {
	for !c.done {
		if err := c.advance(); err != nil {
			return err
		}
		if !c.done && c.num > last && len(c.cur) > 0 {
			return damaged(last)
		}
	}
	return nil
}

// advance takes the next row from the walk.
func (c *cellTypes) advance() error {
	r, ok := <-c.rows
	if !ok {
		c.done = true
		return nil
	}
	if r.err != nil {
		c.done = true
		return r.err
	}
	c.num, c.cur = r.num, r.types
	return nil
}

func (c *cellTypes) Close() error {
	if c.rc == nil {
		return nil
	}
	close(c.stop)
	<-c.stopped // the walk reads rc until it stops
	err := c.rc.Close()
	c.rc = nil
	if err != nil {
		return fmt.Errorf("close sheet part: %w", err)
	}
	return nil
}

// errWalkStopped ends a walk that Close stopped.
var errWalkStopped = errors.New("walk stopped")

// typeWalker reads <row> elements from a worksheet's XML.
type typeWalker struct {
	dec     *xml.Decoder
	stop    <-chan struct{}
	maxCols int // columns whose types are kept
	tokens  int // tokens read, for checking stop now and then
	num     int // row number of cur
	cur     []cellType
	done    bool
}

// token returns the next XML token, or errWalkStopped once stop is closed
// (checked every few thousand tokens, so that one enormous row cannot keep
// Close waiting).
func (w *typeWalker) token() (xml.Token, error) {
	w.tokens++
	if w.tokens%4096 == 0 {
		select {
		case <-w.stop:
			return nil, errWalkStopped
		default:
		}
	}
	return w.dec.Token()
}

// advance reads the next <row> element.
func (w *typeWalker) advance() error {
	for {
		tok, err := w.token()
		if errors.Is(err, errWalkStopped) {
			return err
		}
		if errors.Is(err, io.EOF) {
			w.done = true
			return nil
		}
		if err != nil {
			w.done = true
			return damaged(w.num)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "row" {
				return w.readRow(el)
			}
		case xml.EndElement:
			if el.Name.Local == "sheetData" {
				w.done = true
				return nil
			}
		}
	}
}

func (w *typeWalker) readRow(start xml.StartElement) error {
	num := w.num + 1
	if v, ok := attr(start, "r"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			num = n
		}
	}
	w.num = num
	w.cur = w.cur[:0]
	col := 0
	for {
		tok, err := w.token()
		if errors.Is(err, errWalkStopped) {
			return err
		}
		if err != nil {
			w.done = true
			return damaged(num - 1)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local != "c" {
				if err := w.dec.Skip(); err != nil {
					w.done = true
					return damaged(num - 1)
				}
				continue
			}
			col++
			if ref, ok := attr(el, "r"); ok {
				if n, _, err := excelize.CellNameToCoordinates(ref); err == nil {
					col = n
				}
			}
			ct := cellType{known: true}
			ct.t, _ = attr(el, "t")
			if v, ok := attr(el, "s"); ok {
				ct.s, _ = strconv.Atoi(v)
			}
			if col >= 1 && col <= w.maxCols {
				for len(w.cur) < col {
					w.cur = append(w.cur, cellType{})
				}
				w.cur[col-1] = ct
			}
			if err := w.dec.Skip(); err != nil {
				w.done = true
				return damaged(num - 1)
			}
		case xml.EndElement:
			if el.Name.Local == "row" {
				return nil
			}
		}
	}
}

func attr(el xml.StartElement, name string) (string, bool) {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}
