package ingest

import (
	"errors"
	"fmt"
	"io"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file is the guard between the decoded text and encoding/csv: it
// bounds a field and a record before encoding/csv buffers them, and refuses
// the quoting that cannot be read unambiguously.

// guard watches the text on its way into encoding/csv, which would otherwise
// buffer a whole record however long it is: an unclosed quote could make the
// rest of a 200 MiB file one field. It follows quoting the way encoding/csv
// reads it and refuses a field or record that is bigger than any the limits
// allow, before it is buffered.
//
// It also decides the quoting rules, because encoding/csv runs with
// LazyQuotes, whose two relaxations differ in kind. A quote inside a field
// that does not start with one (17" wheels, a nickname, coordinates) is
// literal text, as Excel and LibreOffice read it. A quoted field whose
// closing quote is followed by anything but the delimiter or a line end, or
// that is never closed, is ambiguous: lazy reading would glue rows together
// or swallow the rest of the file, so the guard refuses it.
type guard struct {
	r         io.Reader
	delim     byte
	cellLimit int // raw bytes of a field: quotes doubled, plus its own quotes
	recLimit  int
	limits    Limits

	fieldStart bool // at the first byte of a field
	inQuote    bool // inside a quoted field
	quoteSeen  bool // inside a quoted field, just after a quote: closing or doubled
	fieldBytes int
	recBytes   int
	field      int
	row        int
	err        error
}

func newGuard(r io.Reader, delim rune, limits Limits) *guard {
	cell := 2*limits.MaxCellBytes + 2
	return &guard{
		r: r, delim: byte(delim), limits: limits, row: 1, fieldStart: true,
		cellLimit: cell,
		// A record of MaxColumns maximal cells plus room for padding with
		// empty trailing fields.
		recLimit: limits.MaxColumns*(cell+1) + 64<<10,
	}
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i, c := range p[:n] {
		g.step(c)
		g.fieldBytes++
		g.recBytes++
		if g.err == nil && g.fieldBytes > g.cellLimit {
			g.err = &guardError{code: lessee.CodeCellTooLarge, row: g.row, field: g.field, inQuote: g.inQuote}
		} else if g.err == nil && g.recBytes > g.recLimit {
			g.err = &guardError{code: lessee.CodeTooManyColumns, row: g.row, field: g.field}
		}
		if g.err != nil {
			// Hand over what came before; the error follows on the next read.
			if i == 0 {
				return 0, g.err
			}
			return i, nil
		}
	}
	if errors.Is(err, io.EOF) && g.inQuote && !g.quoteSeen {
		g.err = &guardError{code: lessee.CodeUnsupportedFormat, row: g.row, field: g.field, unclosed: true}
		if n > 0 {
			return n, nil
		}
		return 0, g.err
	}
	return n, err
}

// step advances the quoting state by one byte of LF-normalised text.
func (g *guard) step(c byte) {
	if g.inQuote {
		if !g.quoteSeen {
			g.quoteSeen = c == '"'
			return
		}
		g.quoteSeen = false
		switch c {
		case '"': // a doubled quote: literal, still quoted
			return
		case g.delim, '\n':
			g.inQuote = false
		default:
			g.err = &guardError{code: lessee.CodeUnsupportedFormat, row: g.row, field: g.field}
			return
		}
	}
	switch c {
	case g.delim:
		g.field++
		g.fieldBytes = -1
		g.fieldStart = true
	case '\n':
		g.row++
		g.field, g.fieldBytes, g.recBytes = 0, -1, -1
		g.fieldStart = true
	case '"':
		// Only a quote that opens a field quotes it; elsewhere it is text.
		g.inQuote = g.fieldStart
		g.fieldStart = false
	default:
		g.fieldStart = false
	}
}

// guardError is what the guard found. It becomes a *lessee.Error only when it
// reaches the table, which by then may know the header names: the guard reads
// ahead of encoding/csv, often past the header before it is mapped.
type guardError struct {
	code     lessee.Code
	row      int
	field    int
	inQuote  bool
	unclosed bool // UNSUPPORTED_FORMAT: a quoted field never closed
}

func (e *guardError) Error() string {
	return fmt.Sprintf("%s at row %d, field %d", e.code, e.row, e.field+1)
}

func (e *guardError) refusal(h *header, limits Limits) *lessee.Error {
	switch e.code {
	case lessee.CodeTooManyColumns:
		return refuse(e.code, e.row, message.RowMoreColumnsThan, e.row, limits.MaxColumns)
	case lessee.CodeUnsupportedFormat:
		what := message.New(message.CSVTextAfterQuote)
		if e.unclosed {
			what = message.New(message.CSVQuoteNeverClosed)
		}
		return refuse(e.code, e.row, message.CSVBrokenInColumn, e.row, h.columnName(e.field), what)
	}
	key := message.CellLongerThan
	if e.inQuote {
		key = message.CellLongerThanOpen
	}
	return refuse(e.code, e.row, key, e.row, h.columnName(e.field), limits.MaxCellBytes)
}
