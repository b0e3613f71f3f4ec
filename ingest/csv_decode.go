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
// sniffed from the header line, lone CR and CRLF made LF, and a strict
// UTF-16 decoder.

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
