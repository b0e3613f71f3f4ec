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

	"golang.org/x/text/encoding/charmap"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file is the CSV record reader: it builds the decoding pipeline,
// reads the header and yields records with their spreadsheet row numbers.
// The delimiter sniffing and the decoders are in csv_decode.go, the guard
// that bounds records and decides the quoting rules in csv_guard.go.

// csvTable reads a CSV file through this pipeline, each stage a streaming
// io.Reader: file -> BOM skipped -> decoded to UTF-8 -> line endings made LF
// -> guard (bounds a record's size before encoding/csv buffers it) ->
// encoding/csv. Each record then gets back the line breaks inside its
// quoted fields as the file had them (restoreBreaks).
type csvTable struct {
	ctx    context.Context
	file   *os.File
	cr     *csv.Reader
	guard  *guard
	breaks *breakLog // what each line break was before it was made LF
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
	breaks := &breakLog{}
	lines := bufio.NewReaderSize(&lfReader{r: text, breaks: breaks}, 256<<10)
	peek, err := lines.Peek(256 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		var r *lessee.Error
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
	t := &csvTable{ctx: ctx, file: f, cr: cr, guard: g, breaks: breaks, limits: limits}

	for {
		fields, line, err := t.read()
		if errors.Is(err, io.EOF) {
			return nil, Info{}, refuse(lessee.CodeMissingHeader, 0,
				message.NoHeaderRow)
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
				message.TooManyRowsFile, t.limits.MaxRows)
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
	t.restoreBreaks(fields, start)
	return fields, line, nil
}

// restoreBreaks puts back, in the fields of the record that starts on
// encoding/csv's line start, the line breaks the file had inside quoted
// fields: lfReader made each LF, and encoding/csv would have turned a CRLF
// into LF anyway. A cell is thus read as the file holds it, decoded to
// UTF-8: "a<CR><LF>b" stays so, and a receipt echoes a multi-line
// reference exactly as it was sent.
//
// Every LF in the LF-only text is a line break of the file, numbered in
// order from 0, and encoding/csv's line n starts after break n-2; LFs inside
// a record's fields come only from its quoted fields (outside quotes an LF
// ends the record). So the j-th LF in the fields, counted from 0, is break
// start-1+j.
func (t *csvTable) restoreBreaks(fields []string, start int) {
	n := start - 1 // number of the record's first break
	t.breaks.forget(n)
	for i, f := range fields {
		k := strings.Count(f, "\n")
		if k == 0 {
			continue
		}
		var b strings.Builder
		b.Grow(len(f) + k)
		for {
			j := strings.IndexByte(f, '\n')
			if j < 0 {
				break
			}
			b.WriteString(f[:j])
			b.WriteString(t.breaks.kind(n).String())
			n++
			f = f[j+1:]
		}
		b.WriteString(f)
		fields[i] = b.String()
	}
}

func (t *csvTable) readError(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	var r *lessee.Error
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
		what := message.New(message.CSVQuotingBroken)
		switch {
		case errors.Is(pe.Err, csv.ErrBareQuote):
			what = message.New(message.CSVBareQuote)
		case errors.Is(pe.Err, csv.ErrQuote):
			what = message.New(message.CSVQuoteNotClosed)
		}
		return refuse(lessee.CodeUnsupportedFormat, line, message.CSVBroken, line, what)
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
