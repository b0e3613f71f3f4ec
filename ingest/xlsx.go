package ingest

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
	"golang.org/x/net/html/charset"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file opens a workbook: the zip-bomb check on the central directory,
// excelize's unzip limits, the password-protected and not-a-workbook
// refusals, the choice of sheet and finding its part in the package. The
// rows are read in xlsx_rows.go, typed in xlsx_typed.go from the cell types
// xlsx_celltypes.go walks the sheet's XML for.

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

func notWorkbook() *lessee.Error {
	return refuse(lessee.CodeUnsupportedFormat, 0,
		message.NotWorkbook)
}

func expandsTooLarge(limits Limits) *lessee.Error {
	return refuse(lessee.CodeExpandsTooLarge, 0,
		message.ExpandsTooLarge, limits.MaxUnzipBytes)
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
				message.PasswordProtected)
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
		return Info{}, refuse(lessee.CodeMissingHeader, 0, message.NoSheets)
	}
	if props, err := f.GetWorkbookProps(); err == nil && props.Date1904 != nil {
		t.date1904 = *props.Date1904
	}
	t.rows, err = f.Rows(sheet)
	if err != nil {
		return Info{}, refuse(lessee.CodeUnsupportedFormat, 0,
			message.SheetNotTable, strconv.Quote(maskDigits(sheet)))
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
				message.SheetNoHeader, strconv.Quote(maskDigits(sheet)))
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
