package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

type kind int

const (
	kindText kind = iota
	kindXLSX
	kindOLE2
)

var (
	magicZIP  = []byte("PK\x03\x04")
	magicOLE2 = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	bomUTF8   = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16L = []byte{0xFF, 0xFE}
	bomUTF16B = []byte{0xFE, 0xFF}
)

// binaryMagics are formats people upload by mistake that may not contain a
// NUL byte near the start, so the NUL test alone would let them through as
// text.
var binaryMagics = []struct {
	magic []byte
	name  message.Key
}{
	{[]byte("%PDF-"), message.KindPDF},
	{[]byte("\x89PNG\r\n\x1a\n"), message.KindPNG},
	{[]byte{0xFF, 0xD8, 0xFF}, message.KindJPEG},
	{[]byte("GIF87a"), message.KindGIF},
	{[]byte("GIF89a"), message.KindGIF},
	{[]byte{0x1F, 0x8B}, message.KindGzip},
	{[]byte("7z\xBC\xAF\x27\x1C"), message.Kind7Zip},
	{[]byte("Rar!\x1A\x07"), message.KindRAR},
	{[]byte("PK\x05\x06"), message.KindEmptyZIP},
	{[]byte("{\\rtf"), message.KindRTF},
	{[]byte("<?xml"), message.KindXML},
}

const sniffLen = 8 << 10

// sniff classifies the file from its first bytes; the name is never consulted.
func sniff(f *os.File) (kind, error) {
	head := make([]byte, sniffLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read upload: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, magicZIP):
		return kindXLSX, nil
	case bytes.HasPrefix(head, magicOLE2):
		return kindOLE2, nil
	case bytes.HasPrefix(head, bomUTF16L), bytes.HasPrefix(head, bomUTF16B):
		return kindText, nil
	}
	for _, m := range binaryMagics {
		if bytes.HasPrefix(head, m.magic) {
			return 0, refuse(lessee.CodeUnsupportedFormat, 0, message.NotATable, message.New(m.name))
		}
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return 0, refuseBinary()
	}
	return kindText, nil
}

func refuseBinary() *lessee.Error {
	return refuse(lessee.CodeUnsupportedFormat, 0, message.NotText)
}

// Directory entry names in an OLE2 compound file are UTF-16LE. Office puts an
// encrypted OOXML workbook in such a container with these two streams.
var (
	oleEncryptionInfo   = utf16le("EncryptionInfo")
	oleEncryptedPackage = utf16le("EncryptedPackage")
)

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}

// refuseOLE2 tells an encrypted workbook from a legacy .xls. The directory
// may sit anywhere in the file, so the whole file is streamed with an overlap
// that keeps a name split across two reads findable.
func refuseOLE2(r io.Reader) error {
	overlap := max(len(oleEncryptionInfo), len(oleEncryptedPackage)) - 1
	buf := make([]byte, 64<<10)
	keep := 0
	for {
		n, err := r.Read(buf[keep:])
		window := buf[:keep+n]
		if bytes.Contains(window, oleEncryptionInfo) || bytes.Contains(window, oleEncryptedPackage) {
			return refuse(lessee.CodeEncryptedWorkbook, 0, message.PasswordProtected)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read upload: %w", err)
		}
		keep = min(overlap, len(window))
		copy(buf, window[len(window)-keep:])
	}
	return refuse(lessee.CodeUnsupportedFormat, 0, message.LegacyXLS)
}

// Text encodings a CSV may arrive in.
const (
	encUTF8    = "UTF-8"
	encUTF16LE = "UTF-16LE"
	encUTF16BE = "UTF-16BE"
	enc1252    = "windows-1252"
)

// detectEncoding picks the encoding of a text file and how many BOM bytes to
// skip. Without a BOM it reads the whole file once: a Norwegian letter near
// the end decides UTF-8 against Windows-1252 as much as one near the start.
// A file with valid multi-byte UTF-8 and also invalid bytes is a mix that no
// single decoding reads right, so it is refused rather than turned into
// mojibake.
func detectEncoding(r io.Reader) (enc string, skip int, err error) {
	br := newByteScanner(r)
	head, err := br.peek(3)
	if err != nil {
		return "", 0, fmt.Errorf("read upload: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, bomUTF8):
		enc, skip = encUTF8, 3
	case bytes.HasPrefix(head, bomUTF16L):
		return encUTF16LE, 2, nil
	case bytes.HasPrefix(head, bomUTF16B):
		return encUTF16BE, 2, nil
	}
	st, err := checkUTF8(br)
	if err != nil {
		return "", 0, err
	}
	if st.nul > 0 {
		return "", 0, refuseBinary()
	}
	if st.invalidLine == 0 {
		return encUTF8, skip, nil
	}
	if skip > 0 || st.multibyte > 0 {
		return "", 0, refuse(lessee.CodeEncodingError, st.invalidLine,
			message.MixedEncodings, st.invalidLine)
	}
	if st.undefined1252Line > 0 {
		return "", 0, refuse(lessee.CodeEncodingError, st.undefined1252Line,
			message.UndefinedBytes, st.undefined1252Line)
	}
	return enc1252, 0, nil
}

type utf8Stats struct {
	nul               int
	multibyte         int // valid multi-byte sequences
	invalidLine       int // line of the first byte that is not UTF-8, 0 if none
	undefined1252Line int // line of the first byte Windows-1252 leaves undefined
}

// checkUTF8 streams the rest of the file, validating UTF-8 across read
// boundaries and counting lines (LF, CRLF or lone CR) for the messages.
func checkUTF8(br *byteScanner) (utf8Stats, error) {
	var st utf8Stats
	line := 1
	prevCR := false
	for {
		chunk, err := br.next()
		if len(chunk) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return st, nil
			}
			return st, fmt.Errorf("read upload: %w", err)
		}
		i := 0
		for i < len(chunk) {
			c := chunk[i]
			if c < utf8.RuneSelf {
				switch c {
				case '\n':
					if !prevCR {
						line++
					}
				case '\r':
					line++
				case 0:
					st.nul++
				}
				prevCR = c == '\r'
				i++
				continue
			}
			prevCR = false
			if !utf8.FullRune(chunk[i:]) && !br.atEOF() {
				// A sequence split by the read: carry it into the next chunk.
				br.unread(len(chunk) - i)
				break
			}
			r, size := utf8.DecodeRune(chunk[i:])
			if r == utf8.RuneError && size == 1 {
				if st.invalidLine == 0 {
					st.invalidLine = line
				}
				if st.undefined1252Line == 0 && undefined1252(c) {
					st.undefined1252Line = line
				}
			} else {
				st.multibyte++
			}
			i += size
		}
	}
}

// undefined1252 reports the five bytes Windows-1252 assigns no character.
func undefined1252(c byte) bool {
	return c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D
}

// byteScanner hands out chunks of a reader and can give back the tail of the
// last chunk, so a UTF-8 sequence split by a read is seen whole.
type byteScanner struct {
	r     io.Reader
	buf   []byte
	start int // first byte not yet handed out
	end   int
	eof   bool
	err   error
}

func newByteScanner(r io.Reader) *byteScanner {
	return &byteScanner{r: r, buf: make([]byte, 64<<10)}
}

func (b *byteScanner) fill() {
	if b.eof || b.err != nil {
		return
	}
	copy(b.buf, b.buf[b.start:b.end])
	b.end -= b.start
	b.start = 0
	for b.end < len(b.buf) {
		n, err := b.r.Read(b.buf[b.end:])
		b.end += n
		if errors.Is(err, io.EOF) {
			b.eof = true
			return
		}
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
}

// peek returns up to n bytes without consuming them.
func (b *byteScanner) peek(n int) ([]byte, error) {
	for b.end-b.start < n && !b.eof && b.err == nil {
		b.fill()
	}
	if b.err != nil {
		return nil, b.err
	}
	return b.buf[b.start:min(b.end, b.start+n)], nil
}

// next returns the buffered bytes, reading more when none are left (or only
// an unread tail is).
func (b *byteScanner) next() ([]byte, error) {
	if b.end-b.start < utf8.UTFMax && !b.eof {
		b.fill()
	}
	if b.err != nil {
		return nil, b.err
	}
	if b.start == b.end {
		return nil, io.EOF
	}
	chunk := b.buf[b.start:b.end]
	b.start = b.end
	return chunk, nil
}

// unread gives back the last n bytes handed out.
func (b *byteScanner) unread(n int) { b.start -= n }

func (b *byteScanner) atEOF() bool { return b.eof }
