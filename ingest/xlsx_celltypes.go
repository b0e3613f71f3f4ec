package ingest

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/xuri/excelize/v2"
	"golang.org/x/net/html/charset"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file walks a worksheet's XML for each cell's t and s attributes, in
// its own goroutine and in step with excelize's row iterator, and refuses a
// worksheet whose XML is damaged.

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
func damaged(row int) *lessee.Error {
	if row <= 0 {
		return refuse(lessee.CodeUnsupportedFormat, 0,
			message.WorksheetDamaged)
	}
	return refuse(lessee.CodeUnsupportedFormat, row,
		message.WorksheetDamagedAfter, row)
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
