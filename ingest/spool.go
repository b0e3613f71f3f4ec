package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fleetreg/lessee"
)

// maxProblemArgs bounds the arguments of a spooled Problem's Text, so that
// a damaged spool cannot make the reader allocate without end.
const maxProblemArgs = 16

// A record spool holds the records of one scanned file, each with its cells
// as written, so that later passes need not parse the file again: excelize
// spends tens of microseconds on a row that the spool gives back in one. It
// is a private, short-lived file of one worker (never shared between
// versions of the program): a magic line, the length-prefixed JSON of the
// file's Info, then one record after another, every string length-prefixed.
const spoolMagic = "lessee-record-spool-1\n"

// ScanSpooled is Scan that, for an XLSX file, also writes every record it
// reads, with its original cells, to a new record spool at spoolPath, and
// names it in Info.Spool; OpenSpool reads it back. A CSV file is read as by
// Scan and nothing is written: its parse costs no more than the spool's.
// On any error the spool is removed.
func ScanSpooled(ctx context.Context, path string, limits Limits, spoolPath string) (Info, error) {
	t, info, err := Open(ctx, path, limits)
	if err != nil {
		return info, err
	}
	var sw *spoolWriter
	if info.Format == lessee.FormatXLSX {
		if sw, err = createSpool(spoolPath, info); err != nil {
			_ = t.Close()
			return Info{Format: info.Format}, err
		}
	}
	info, err = scanTable(t, info, sw)
	if sw != nil {
		if cerr := sw.close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(spoolPath)
			return info, err
		}
		info.Spool = spoolPath
	}
	return info, err
}

// scanTable reads t to its end, counting records and writing each to sw
// when sw is not nil, and closes t.
func scanTable(t Table, info Info, sw *spoolWriter) (Info, error) {
	n := 0
	for {
		raw, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = t.Close()
			return Info{Format: info.Format}, err
		}
		if sw != nil {
			var orig []string
			if ot, ok := t.(OriginalTable); ok {
				orig = ot.Original()
			}
			if err := sw.write(raw, orig); err != nil {
				_ = t.Close()
				return Info{Format: info.Format}, err
			}
		}
		n++
	}
	if err := t.Close(); err != nil {
		return Info{}, fmt.Errorf("close %s: %w", info.Format, err)
	}
	info.Rows = n
	return info, nil
}

type spoolWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

func createSpool(path string, info Info) (*spoolWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create record spool: %w", err)
	}
	sw := &spoolWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	head, err := json.Marshal(info)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create record spool: %w", err)
	}
	sw.buf = append(sw.buf, spoolMagic...)
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(head)))
	sw.buf = append(sw.buf, head...)
	if _, err := sw.w.Write(sw.buf); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write record spool: %w", err)
	}
	return sw, nil
}

func (sw *spoolWriter) write(raw lessee.RawRow, orig []string) error {
	b := sw.buf[:0]
	b = binary.AppendUvarint(b, uint64(raw.Index))
	b = binary.AppendUvarint(b, uint64(raw.Line))
	if p := raw.Problem; p != nil {
		b = append(b, 1)
		b = appendString(b, string(p.Code))
		b = appendString(b, p.Message)
		// The Text, for the message in the submitter's language: its
		// arguments as text, which a reader's Problem (numbers only)
		// renders alike.
		b = appendString(b, p.Text.Key)
		b = appendString(b, p.Text.Field)
		b = binary.AppendUvarint(b, uint64(len(p.Text.Args)))
		for _, a := range p.Text.Args {
			b = appendString(b, fmt.Sprint(a))
		}
	} else {
		b = append(b, 0)
	}
	for _, c := range raw.Cells {
		b = appendString(b, c.Value)
		b = append(b, byte(c.Kind))
	}
	b = binary.AppendUvarint(b, uint64(len(orig)))
	for _, s := range orig {
		b = appendString(b, s)
	}
	sw.buf = b
	if _, err := sw.w.Write(b); err != nil {
		return fmt.Errorf("write record spool: %w", err)
	}
	return nil
}

func (sw *spoolWriter) close() error {
	err := sw.w.Flush()
	if cerr := sw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write record spool: %w", err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// OpenSpool returns the records of a spool ScanSpooled wrote, in file order,
// and the Info of the file they came from (Rows left 0, as Open leaves it).
// A spool that does not read back whole is an error, never a short table.
// The caller must Close the table.
func OpenSpool(ctx context.Context, spoolPath string) (OriginalTable, Info, error) {
	f, err := os.Open(spoolPath)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open record spool: %w", err)
	}
	t, info, err := readSpool(ctx, f)
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("read record spool %s: %w", spoolPath, err)
	}
	info.Spool = spoolPath
	return t, info, nil
}

// readSpool reads the head of a spool from r and returns the table of its
// records, which closes r.
func readSpool(ctx context.Context, r io.ReadCloser) (*spoolTable, Info, error) {
	t := &spoolTable{ctx: ctx, c: r, r: bufio.NewReaderSize(r, 256<<10)}
	info, err := t.readHead()
	if err != nil {
		return nil, Info{}, err
	}
	info.Rows = 0
	return t, info, nil
}

type spoolTable struct {
	ctx  context.Context
	c    io.Closer
	r    *bufio.Reader
	orig []string
	err  error
}

// Bounds on what a spool may claim, so that a damaged one cannot ask for
// gigabytes: far above any limit a scan enforces, far below trouble.
const (
	maxSpoolHead   = 64 << 20 // the Info's JSON
	maxSpoolString = 16 << 20 // one cell
	maxSpoolCells  = 1 << 14  // original cells of a record: Excel's column limit
)

func (t *spoolTable) readHead() (Info, error) {
	magic := make([]byte, len(spoolMagic))
	if _, err := io.ReadFull(t.r, magic); err != nil || string(magic) != spoolMagic {
		return Info{}, errors.New("not a record spool")
	}
	head, err := t.bytes(maxSpoolHead)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(head, &info); err != nil {
		return Info{}, err
	}
	return info, nil
}

func (t *spoolTable) Next() (lessee.RawRow, error) {
	if t.err != nil {
		return lessee.RawRow{}, t.err
	}
	row, err := t.next()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("read record spool: %w", err)
		}
		t.err = err
	}
	return row, err
}

func (t *spoolTable) next() (lessee.RawRow, error) {
	t.orig = nil
	if err := t.ctx.Err(); err != nil {
		return lessee.RawRow{}, err
	}
	index, err := binary.ReadUvarint(t.r)
	if errors.Is(err, io.EOF) {
		return lessee.RawRow{}, io.EOF // between records: the end
	}
	if err != nil {
		return lessee.RawRow{}, err
	}
	row := lessee.RawRow{Index: int(index)}
	line, err := t.uvarint()
	if err != nil {
		return lessee.RawRow{}, err
	}
	row.Line = int(line)
	hasProblem, err := t.r.ReadByte()
	if err != nil {
		return lessee.RawRow{}, unexpected(err)
	}
	if hasProblem == 1 {
		var p lessee.Problem
		var code string
		for _, s := range []*string{&code, &p.Message} {
			if *s, err = t.string(); err != nil {
				return lessee.RawRow{}, err
			}
		}
		p.Code = lessee.Code(code)
		for _, s := range []*string{&p.Text.Key, &p.Text.Field} {
			if *s, err = t.string(); err != nil {
				return lessee.RawRow{}, err
			}
		}
		n, err := t.uvarint()
		if err != nil {
			return lessee.RawRow{}, err
		}
		if n > maxProblemArgs {
			return lessee.RawRow{}, errors.New("record spool: a problem with too many arguments")
		}
		for range n {
			a, err := t.string()
			if err != nil {
				return lessee.RawRow{}, err
			}
			p.Text.Args = append(p.Text.Args, a)
		}
		row.Problem = &p
	}
	for i := range row.Cells {
		if row.Cells[i].Value, err = t.string(); err != nil {
			return lessee.RawRow{}, err
		}
		kind, err := t.r.ReadByte()
		if err != nil {
			return lessee.RawRow{}, unexpected(err)
		}
		row.Cells[i].Kind = lessee.CellKind(kind)
	}
	n, err := t.uvarint()
	if err != nil {
		return lessee.RawRow{}, err
	}
	if n > maxSpoolCells {
		return lessee.RawRow{}, errors.New("damaged record")
	}
	orig := make([]string, n)
	for i := range orig {
		if orig[i], err = t.string(); err != nil {
			return lessee.RawRow{}, err
		}
	}
	t.orig = orig
	return row, nil
}

func (t *spoolTable) uvarint() (uint64, error) {
	n, err := binary.ReadUvarint(t.r)
	return n, unexpected(err)
}

func (t *spoolTable) bytes(limit uint64) ([]byte, error) {
	n, err := t.uvarint()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errors.New("damaged record")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(t.r, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

func (t *spoolTable) string() (string, error) {
	b, err := t.bytes(maxSpoolString)
	return string(b), err
}

// unexpected turns an end of file inside a record into a damaged spool.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Original implements OriginalTable.
func (t *spoolTable) Original() []string { return t.orig }

func (t *spoolTable) Close() error { return t.c.Close() }
