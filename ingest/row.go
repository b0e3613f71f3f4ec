package ingest

import (
	"strconv"
	"strings"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file holds what the CSV and XLSX readers share once they have a
// record: how often they check the context, and the rules that make a
// RawRow of a record.

// ctxEvery is how many records pass between checks of the context.
const ctxEvery = 1024

// makeRow builds a RawRow from a non-blank record whose trailing empty cells
// are already trimmed. Both readers use it, so CSV and XLSX follow one set of
// rules; kinds is nil for CSV (every cell text).
func makeRow(h *header, cells []string, index, line int, limits Limits) (lessee.RawRow, error) {
	return makeTypedRow(h, cells, nil, index, line, limits)
}

func makeTypedRow(h *header, cells []string, kinds []lessee.CellKind, index, line int, limits Limits) (lessee.RawRow, error) {
	for i, c := range cells {
		if len(c) > limits.MaxCellBytes {
			return lessee.RawRow{}, cellTooLarge(line, h.columnName(i), len(c), limits)
		}
	}
	if len(cells) > limits.MaxColumns {
		return lessee.RawRow{}, refuse(lessee.CodeTooManyColumns, line,
			message.RowColumns, line, len(cells), limits.MaxColumns)
	}
	row := lessee.RawRow{Index: index, Line: line}
	for i := 0; i < len(cells) && i < len(h.col); i++ {
		c := h.col[i]
		if c < 0 {
			continue
		}
		cell := lessee.Cell{Value: strings.TrimSpace(cells[i]), Kind: lessee.CellText}
		if i < len(kinds) && cell.Value != "" {
			cell.Kind = kinds[i]
		}
		row.Cells[c] = cell
	}
	if len(cells) > len(h.col) {
		// Arguments as text: the record spool keeps them so.
		row.Problem = message.Problem(lessee.English, lessee.CodeRaggedRow,
			message.New(message.RaggedRow, strconv.Itoa(len(cells)), strconv.Itoa(len(h.col))))
	}
	return row, nil
}
