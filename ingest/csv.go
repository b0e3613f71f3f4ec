package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/fleetreg/lessee"
)

// ctxEvery is how many records pass between checks of the context.
const ctxEvery = 1024

// csvTable reads a CSV file through this pipeline, each stage a streaming
// io.Reader: file -> BOM skipped -> decoded to UTF-8 -> line endings made LF
// -> guard (bounds a record's size before encoding/csv buffers it) ->
// encoding/csv.
type csvTable struct {
	ctx    context.Context
	file   *os.File
	cr     *csv.Reader
	guard  *guard
	limits Limits
	head   *header
	nl     int      // newlines inside quoted fields of the records read so far
	orig   []string // the record Next last returned
	index  int      // next data record's Index
	reads  int
	err    error // sticky: a table that failed stays failed
}

func openCSV(ctx context.Context, f *os.File, limits Limits) (Table, Info, error) {
	t, info, err := newCSVTable(ctx, f, limits)
	if err != nil {
		_ = f.Close()
		return nil, Info{}, err
	}
	return t, info, nil
}

func newCSVTable(ctx context.Context, f *os.File, limits Limits) (*csvTable, Info, error) {
	enc, skip, err := detectEncoding(f)
	if err != nil {
		return nil, Info{}, err
	}
	if _, err := f.Seek(int64(skip), io.SeekStart); err != nil {
		return nil, Info{}, fmt.Errorf("seek upload: %w", err)
	}
	src := bufio.NewReaderSize(f, 64<<10)
	var text io.Reader
	switch enc {
	case encUTF16LE:
		text = &utf16Reader{r: src, line: 1}
	case encUTF16BE:
		text = &utf16Reader{r: src, bigEndian: true, line: 1}
	case enc1252:
		text = charmap.Windows1252.NewDecoder().Reader(src)
	default:
		text = src
	}
	// The delimiter is sniffed from the header line, so the normalised text
	// is buffered enough to see a long header whole.
	lines := bufio.NewReaderSize(&lfReader{r: text}, 256<<10)
	peek, err := lines.Peek(256 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		var r *Refusal
		if errors.As(err, &r) {
			return nil, Info{}, r
		}
		return nil, Info{}, fmt.Errorf("read upload: %w", err)
	}
	delim := sniffDelimiter(peek)

	g := newGuard(lines, delim, limits)
	cr := csv.NewReader(g)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // counts are checked here, against the header
	cr.ReuseRecord = true   // safe: csv allocates each record's strings anew
	cr.LazyQuotes = true    // the guard refuses the ambiguous cases first
	t := &csvTable{ctx: ctx, file: f, cr: cr, guard: g, limits: limits}

	for {
		fields, line, err := t.read()
		if errors.Is(err, io.EOF) {
			return nil, Info{}, refuse(lessee.CodeMissingHeader, 0,
				"the file has no header row; the first row must name the columns")
		}
		if err != nil {
			return nil, Info{}, err
		}
		cells := trimTrailing(fields)
		if len(cells) == 0 {
			continue
		}
		cells[0] = strings.TrimPrefix(cells[0], "\uFEFF")
		h, err := mapHeader(cells, line, limits)
		if err != nil {
			return nil, Info{}, err
		}
		t.head = h
		info := h.info
		info.Format = lessee.FormatCSV
		info.Delimiter = delim
		info.Encoding = enc
		return t, info, nil
	}
}

func (t *csvTable) Next() (lessee.RawRow, error) {
	if t.err != nil {
		return lessee.RawRow{}, t.err
	}
	row, err := t.next()
	if err != nil {
		t.err = err
	}
	return row, err
}

func (t *csvTable) next() (lessee.RawRow, error) {
	t.orig = nil
	for {
		fields, line, err := t.read()
		if err != nil {
			return lessee.RawRow{}, err
		}
		cells := trimTrailing(fields)
		if len(cells) == 0 {
			continue // a blank row: counted in line numbers, not a record
		}
		if t.index >= t.limits.MaxRows {
			return lessee.RawRow{}, refuse(lessee.CodeTooManyRows, line,
				"the file has more than %d data rows; split it into smaller files", t.limits.MaxRows)
		}
		row, err := makeRow(t.head, cells, t.index, line, t.limits)
		if err != nil {
			return lessee.RawRow{}, err
		}
		t.index++
		t.orig = cells
		return row, nil
	}
}

// read returns the next record and the spreadsheet row it starts on.
func (t *csvTable) read() ([]string, int, error) {
	t.reads++
	if t.reads%ctxEvery == 0 {
		if err := t.ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	fields, err := t.cr.Read()
	if err != nil {
		return nil, 0, t.readError(err)
	}
	start, _ := t.cr.FieldPos(0)
	// A spreadsheet starts a row at every line break outside quotes, blank
	// lines included; breaks inside quoted fields stay within the cell.
	line := start - t.nl
	for _, f := range fields {
		t.nl += strings.Count(f, "\n")
	}
	return fields, line, nil
}

func (t *csvTable) readError(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	var ge *guardError
	if errors.As(err, &ge) {
		return ge.refusal(t.head, t.limits)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line := pe.StartLine - t.nl
		what := "the quoting is broken"
		switch {
		case errors.Is(pe.Err, csv.ErrBareQuote):
			what = `a quote (") appears inside a field that does not start with one`
		case errors.Is(pe.Err, csv.ErrQuote):
			what = `a quoted field is not closed properly (a missing or extra ")`
		}
		return refuse(lessee.CodeUnsupportedFormat, line,
			`row %d: the file cannot be read as CSV: %s; a field that holds the delimiter, a quote or a line break must be in quotes, with quotes inside doubled ("")`,
			line, what)
	}
	return fmt.Errorf("read csv: %w", err)
}

// Original implements OriginalTable. The cells share encoding/csv's reused
// record, which the next Read overwrites, hence valid until the next Next.
func (t *csvTable) Original() []string { return t.orig }

func (t *csvTable) Close() error {
	if t.file == nil {
		return nil
	}
	err := t.file.Close()
	t.file = nil
	return err
}

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
			"row %d has %d columns; the limit is %d", line, len(cells), limits.MaxColumns)
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
		row.Problem = &lessee.Problem{
			Code:    lessee.CodeRaggedRow,
			Message: fmt.Sprintf("row has %d fields, header has %d", len(cells), len(h.col)),
		}
	}
	return row, nil
}

// sniffDelimiter picks ';', ',' or tab by counting each outside quotes in the
// first non-blank line. Ties go to ';' (Norwegian Excel's choice, since ','
// is the decimal mark there), then tab. A line with none, which can name
// only one column, gets ','.
func sniffDelimiter(text []byte) rune {
	// A line of only delimiters (Excel pads empty rows so) is blank, but
	// still shows the delimiter if no other line does.
	start, fallback := len(text), -1
	for pos := 0; pos < len(text); {
		end := pos
		for end < len(text) && text[end] != '\n' {
			end++
		}
		line := string(text[pos:end])
		if strings.Trim(line, " \t;,\"") != "" {
			start = pos
			break
		}
		if fallback < 0 && strings.ContainsAny(line, ";,\t") {
			fallback = pos
		}
		pos = end + 1
	}
	if start == len(text) && fallback >= 0 {
		start = fallback
	}
	counts := map[byte]int{}
	inQuote := false
	for _, c := range text[min(start, len(text)):] {
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		if c == '\n' {
			break
		}
		if c == ';' || c == ',' || c == '\t' {
			counts[c]++
		}
	}
	best, n := byte(','), 0
	for _, c := range []byte{';', '\t', ','} {
		if counts[c] > n {
			best, n = c, counts[c]
		}
	}
	return rune(best)
}

// lfReader turns CRLF and lone CR into LF. encoding/csv handles CRLF itself
// but not a lone CR (old Mac line ends), which would glue the whole file into
// one record.
type lfReader struct {
	r      io.Reader
	prevCR bool
}

func (l *lfReader) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c == '\n' && l.prevCR {
				l.prevCR = false
				continue
			}
			l.prevCR = c == '\r'
			if c == '\r' {
				c = '\n'
			}
			p[j] = c
			j++
		}
		if j > 0 || err != nil || n == 0 {
			return j, err
		}
	}
}

// utf16Reader decodes UTF-16 to UTF-8 and refuses unpaired surrogates and an
// odd trailing byte, which x/text would silently turn into U+FFFD.
type utf16Reader struct {
	r         *bufio.Reader
	bigEndian bool
	pending   []byte // encoded bytes of a rune that did not fit in p
	line      int
	prevCR    bool
	err       error
}

func (u *utf16Reader) unit() (uint16, error) {
	a, err := u.r.ReadByte()
	if err != nil {
		return 0, err
	}
	b, err := u.r.ReadByte()
	if errors.Is(err, io.EOF) {
		return 0, refuse(lessee.CodeEncodingError, u.line,
			"line %d: the UTF-16 text ends in half a character; save the file again as CSV UTF-8", u.line)
	}
	if err != nil {
		return 0, err
	}
	if u.bigEndian {
		return uint16(a)<<8 | uint16(b), nil
	}
	return uint16(b)<<8 | uint16(a), nil
}

func (u *utf16Reader) rune() (rune, error) {
	c, err := u.unit()
	if err != nil {
		return 0, err
	}
	if !utf16.IsSurrogate(rune(c)) {
		return rune(c), nil
	}
	bad := refuse(lessee.CodeEncodingError, u.line,
		"line %d: the UTF-16 text holds a broken character (unpaired surrogate); save the file again as CSV UTF-8", u.line)
	if c >= 0xDC00 {
		return 0, bad // a low surrogate first
	}
	d, err := u.unit()
	if errors.Is(err, io.EOF) {
		return 0, bad
	}
	if err != nil {
		return 0, err
	}
	r := utf16.DecodeRune(rune(c), rune(d))
	if r == utf8.RuneError {
		return 0, bad
	}
	return r, nil
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	for n < len(p) && len(u.pending) == 0 {
		if u.err != nil {
			break
		}
		r, err := u.rune()
		if err != nil {
			u.err = err
			break
		}
		if r == '\n' && !u.prevCR || r == '\r' {
			u.line++
		}
		u.prevCR = r == '\r'
		var buf [utf8.UTFMax]byte
		size := utf8.EncodeRune(buf[:], r)
		k := copy(p[n:], buf[:size])
		n += k
		if k < size {
			u.pending = append(u.pending[:0], buf[k:size]...)
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, u.err
}

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

// guardError is what the guard found. It becomes a *Refusal only when it
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

func (e *guardError) refusal(h *header, limits Limits) *Refusal {
	switch e.code {
	case lessee.CodeTooManyColumns:
		return refuse(e.code, e.row, "row %d has more columns than the limit of %d", e.row, limits.MaxColumns)
	case lessee.CodeUnsupportedFormat:
		what := `a quoted field has text after its closing quote (a missing or extra ")`
		if e.unclosed {
			what = `a quoted field is never closed (a missing ")`
		}
		return refuse(e.code, e.row,
			`row %d, column %s: the file cannot be read as CSV: %s; a field that holds the delimiter, a quote or a line break must be in quotes, with quotes inside doubled ("")`,
			e.row, h.columnName(e.field), what)
	}
	hint := ""
	if e.inQuote {
		hint = ` (is a quote (") left open?)`
	}
	return refuse(e.code, e.row, "row %d, column %s: the cell is longer than the limit of %d bytes%s",
		e.row, h.columnName(e.field), limits.MaxCellBytes, hint)
}
