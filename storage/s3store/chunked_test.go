package s3store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
)

// crc32Base64 is the x-amz-checksum-crc32 value of b.
func crc32Base64(b []byte) string {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(buf[:])
}

// encodeChunked frames data as aws-chunked with chunks of chunkSize bytes.
// signed adds fake chunk signatures; trailers are appended after the last
// chunk as "name:value" lines.
func encodeChunked(tb testing.TB, data []byte, chunkSize int, signed bool, trailers ...string) []byte {
	tb.Helper()
	if chunkSize <= 0 {
		chunkSize = 1
	}
	sig := ""
	if signed {
		sig = ";chunk-signature=" + strings.Repeat("ab", 32)
	}
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		fmt.Fprintf(&b, "%x%s\r\n", n, sig)
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	fmt.Fprintf(&b, "0%s\r\n", sig)
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func decodeAll(body []byte, want int64, trailer string, hdr http.Header) ([]byte, error) {
	return io.ReadAll(newChunkedReader(bytes.NewReader(body), want, trailer, hdr))
}

func TestChunkedReader(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("æøå,lessee;row\n"), 1000)
	good := crc32Base64(data)
	tests := []struct {
		name    string
		body    []byte
		want    int64
		trailer string
		hdr     http.Header
		errCode gofakes3.ErrorCode // "" means success
	}{
		{name: "OK/Signed", body: encodeChunked(t, data, 4096, true), want: int64(len(data))},
		{name: "OK/UnsignedTrailer", body: encodeChunked(t, data, 8192, false, "x-amz-checksum-crc32:"+good), want: int64(len(data)), trailer: "x-amz-checksum-crc32"},
		{name: "OK/SignedTrailer", body: encodeChunked(t, data, 1000, true, "x-amz-checksum-crc32:"+good, "x-amz-trailer-signature:"+strings.Repeat("cd", 32)), want: int64(len(data)), trailer: "x-amz-checksum-crc32"},
		{name: "OK/ChecksumHeader", body: encodeChunked(t, data, 65536, true), want: int64(len(data)), hdr: http.Header{"X-Amz-Checksum-Crc32": {good}}},
		{name: "OK/Empty", body: []byte("0\r\n\r\n"), want: 0},
		{name: "OK/NoFinalCRLF", body: []byte("3\r\nabc\r\n0\r\n"), want: 3},
		{name: "OK/UnknownAlgorithm", body: encodeChunked(t, data, 512, false, "x-amz-checksum-foo:bar"), want: int64(len(data)), trailer: "x-amz-checksum-foo"},
		{name: "ErrBadDigest", body: encodeChunked(t, data, 8192, false, "x-amz-checksum-crc32:AAAAAA=="), want: int64(len(data)), trailer: "x-amz-checksum-crc32", errCode: gofakes3.ErrBadDigest},
		{name: "ErrBadDigestHeader", body: encodeChunked(t, data, 8192, false), want: int64(len(data)), hdr: http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, errCode: gofakes3.ErrBadDigest},
		{name: "ErrTooLong", body: encodeChunked(t, data, 8192, true), want: 10, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrTooShort", body: encodeChunked(t, data, 8192, true), want: int64(len(data)) + 1, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrTruncated", body: encodeChunked(t, data, 8192, true)[:5000], want: int64(len(data)), errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrBadSize", body: []byte("zz\r\nabc\r\n0\r\n\r\n"), want: 3, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrNegativeSize", body: []byte("-3\r\nabc\r\n0\r\n\r\n"), want: 3, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrMissingCRLF", body: []byte("3\r\nabcX\r\n0\r\n\r\n"), want: 3, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrLongHeaderLine", body: append([]byte("3;"), bytes.Repeat([]byte("x"), 100000)...), want: 3, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrHugeSize", body: []byte("7fffffffffffffff\r\nabc"), want: 3, errCode: gofakes3.ErrIncompleteBody},
		{name: "ErrBadTrailer", body: []byte("3\r\nabc\r\n0\r\nno-colon\r\n\r\n"), want: 3, errCode: gofakes3.ErrIncompleteBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeAll(tt.body, tt.want, tt.trailer, tt.hdr)
			if tt.errCode == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if int64(len(got)) != tt.want || (tt.want == int64(len(data)) && !bytes.Equal(got, data)) {
					t.Fatalf("decoded %d bytes, want %d", len(got), tt.want)
				}
				return
			}
			var s3err gofakes3.Error
			if !errors.As(err, &s3err) || s3err.ErrorCode() != tt.errCode {
				t.Fatalf("err = %v, want code %s", err, tt.errCode)
			}
		})
	}
}

func TestWithoutAWSChunked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"aws-chunked"}, ""},
		{[]string{"aws-chunked,gzip"}, "gzip"},
		{[]string{"gzip", "AWS-CHUNKED"}, "gzip"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := withoutAWSChunked(tt.in); got != tt.want {
			t.Errorf("withoutAWSChunked(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzChunkedDecoder checks that arbitrary bodies never panic or decode to
// more than the declared length, and that any data framed with any chunk
// size (signed or not, with a CRC32 trailer) decodes back to itself.
func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("3\r\nabc\r\n0\r\n\r\n"), []byte("abc"), uint16(1), false)
	f.Add([]byte("3;chunk-signature=00\r\nabc\r\n0;chunk-signature=00\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"), []byte("hello world"), uint16(4), true)
	f.Add([]byte("ffffffffffffffffff\r\n"), []byte{}, uint16(0), false)
	f.Add([]byte("0\r\nx-amz-checksum-crc32:\r\n\r\n"), []byte("æøå"), uint16(2), true)
	f.Fuzz(func(t *testing.T, raw, data []byte, chunk uint16, signed bool) {
		const want = 64
		got, err := io.ReadAll(io.LimitReader(newChunkedReader(bytes.NewReader(raw), want, "x-amz-checksum-crc32", nil), 1<<20))
		if len(got) > want {
			t.Fatalf("decoded %d bytes, more than the declared %d", len(got), want)
		}
		if err == nil && len(got) != want {
			t.Fatalf("decoded %d bytes without error, want %d", len(got), want)
		}

		if len(data) > 1<<16 {
			data = data[:1<<16] // keep each run fast; framing does not depend on size
		}
		body := encodeChunked(t, data, int(chunk), signed, "x-amz-checksum-crc32:"+crc32Base64(data))
		back, err := decodeAll(body, int64(len(data)), "x-amz-checksum-crc32", nil)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("round trip changed the data")
		}
	})
}
