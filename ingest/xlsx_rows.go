package ingest

import (
	"io"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file is the XLSX streaming row reader: Next, and readRow, which
// steps excelize's row iterator and the cell-type walk together.

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
				message.TooManyRowsSheet, t.limits.MaxRows)
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
			message.RowUnreadable, t.rowNum, err)
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

// Original implements OriginalTable.
func (t *xlsxTable) Original() []string { return t.orig }
