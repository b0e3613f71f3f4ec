package ingest

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// This file turns CSV bytes into LF-terminated UTF-8 text: the delimiter
// sniffed from the header line, lone CR and CRLF made LF (each recorded, so
// that quoted cells can have theirs back), and a strict UTF-16 decoder.

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
//
// Every line break it passes on becomes LF, so encoding/csv, the guard and
// the row numbering see one kind; breaks, when set, remembers what each was
// in the file, so that the table can give a quoted cell back with the line
// breaks it was sent with (see csvTable.restoreBreaks).
type lfReader struct {
	r      io.Reader
	prevCR bool // the last byte read was CR, its break not yet recorded
	breaks *breakLog
}

func (l *lfReader) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if l.prevCR {
				l.prevCR = false
				if c == '\n' {
					l.record(breakCRLF)
					continue
				}
				l.record(breakCR)
			}
			switch c {
			case '\r':
				// Which break this is shows only with the next byte,
				// which may come with the next read; the LF goes out now.
				l.prevCR = true
				c = '\n'
			case '\n':
				l.record(breakLF)
			}
			p[j] = c
			j++
		}
		if err != nil && l.prevCR {
			// A CR last in the file (or before a read error) was a lone CR.
			l.prevCR = false
			l.record(breakCR)
		}
		if j > 0 || err != nil || n == 0 {
			return j, err
		}
	}
}

func (l *lfReader) record(k breakKind) {
	if l.breaks != nil {
		l.breaks.add(k)
	}
}

// breakKind is what a line break was in the file before lfReader made it LF.
type breakKind uint8

const (
	breakLF breakKind = iota
	breakCRLF
	breakCR
)

func (k breakKind) String() string {
	switch k {
	case breakCRLF:
		return "\r\n"
	case breakCR:
		return "\r"
	}
	return "\n"
}

// breakLog is the kinds of the line breaks lfReader has passed on, in order,
// numbered from 0, in runs of one kind: a file with one kind of line end
// is a single run. The table forgets the breaks before each record it
// reads, so the log holds only what lies between encoding/csv and the read
// ahead of the buffers before it, however long the file.
type breakLog struct {
	runs  []breakRun
	first int // the number of runs[0]'s first break
}

type breakRun struct {
	kind breakKind
	n    int
}

func (l *breakLog) add(k breakKind) {
	if n := len(l.runs); n > 0 && l.runs[n-1].kind == k {
		l.runs[n-1].n++
		return
	}
	l.runs = append(l.runs, breakRun{kind: k, n: 1})
}

// forget drops the breaks numbered below i.
func (l *breakLog) forget(i int) {
	for len(l.runs) > 0 && l.first+l.runs[0].n <= i {
		l.first += l.runs[0].n
		l.runs = l.runs[1:]
	}
	if len(l.runs) == 0 {
		l.runs = nil // let the backing array go
	}
}

// kind returns the kind of break i, forgetting those before it. A break
// not recorded (never the case for a break inside a quoted field, which
// lfReader has recorded before encoding/csv can finish the field) is LF.
func (l *breakLog) kind(i int) breakKind {
	l.forget(i)
	if len(l.runs) == 0 || i < l.first {
		return breakLF
	}
	return l.runs[0].kind
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
			message.UTF16HalfCharacter, u.line)
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
		message.UTF16Surrogate, u.line)
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
