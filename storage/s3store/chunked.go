package s3store

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/johannesboyne/gofakes3"
)

// Limits of the aws-chunked framing. A chunk header is "hex-size" plus an
// optional ";chunk-signature=<64 hex>" (longer for SigV4a), so 4 KiB is
// generous; trailers are a checksum and a signature.
const (
	maxChunkLine   = 4 << 10
	maxTrailers    = 16
	maxChunkDigits = 16
)

// errChunkFormat reports broken aws-chunked framing. It is an S3 error code so
// that gofakes3 answers 400 rather than 500 when it surfaces from a body read.
var errChunkFormat = gofakes3.ErrorMessage(gofakes3.ErrIncompleteBody, "malformed aws-chunked body")

// crc64NVME is the reflected form of the CRC-64/NVME polynomial; Go's crc64
// already uses the all-ones initial value and final xor that NVME needs.
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// newChecksum returns a hash for an x-amz-checksum-* header name, or nil
// for an algorithm this decoder does not verify.
func newChecksum(header string) hash.Hash {
	switch strings.ToLower(header) {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		return crc64.New(crc64NVMETable)
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}

type chunkState int

const (
	stateHeader chunkState = iota
	stateData
	stateDataEnd
	stateTrailer
	stateDone
)

// chunkedReader decodes an aws-chunked body: chunks of
// "hex-size[;chunk-signature=...]\r\n<data>\r\n", a zero-size chunk, optional
// trailer lines ("x-amz-checksum-crc32:<base64>") and a final empty line.
// Chunk signatures are not verified: the embedded endpoint does not
// authenticate. The decoded length must equal want, and a checksum named in
// the trailer (or sent as a header) must match the decoded bytes.
type chunkedReader struct {
	br      *bufio.Reader
	state   chunkState
	remain  int64 // bytes left in the current chunk
	decoded int64
	want    int64
	// sum is the checksum being computed, named by sumName; expected is a
	// value that arrived as a request header, checked when no trailer has one.
	sum      hash.Hash
	sumName  string
	expected string
	err      error
}

// newChunkedReader decodes r, which must decode to exactly want bytes.
// trailerName is the x-amz-trailer header (may be empty); header holds the
// request headers, consulted for a checksum sent up front.
func newChunkedReader(r io.Reader, want int64, trailerName string, header http.Header) *chunkedReader {
	cr := &chunkedReader{br: bufio.NewReaderSize(r, 32<<10), want: want}
	name := strings.ToLower(strings.TrimSpace(trailerName))
	if h := newChecksum(name); h != nil {
		cr.sum, cr.sumName = h, name
	} else {
		for k, v := range header {
			lk := strings.ToLower(k)
			if h := newChecksum(lk); h != nil && len(v) > 0 {
				cr.sum, cr.sumName, cr.expected = h, lk, v[0]
				break
			}
		}
	}
	return cr
}

func (cr *chunkedReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch cr.state {
		case stateHeader:
			if err := cr.readChunkHeader(); err != nil {
				return 0, cr.fail(err)
			}
		case stateData:
			if int64(len(p)) > cr.remain {
				p = p[:cr.remain]
			}
			n, err := cr.br.Read(p)
			cr.remain -= int64(n)
			cr.decoded += int64(n)
			if cr.sum != nil {
				cr.sum.Write(p[:n])
			}
			if cr.remain == 0 {
				cr.state = stateDataEnd
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errChunkFormat
				}
				return n, cr.fail(err)
			}
			return n, nil
		case stateDataEnd:
			line, err := cr.readLine()
			if err != nil {
				return 0, cr.fail(err)
			}
			if len(line) != 0 {
				return 0, cr.fail(errChunkFormat)
			}
			cr.state = stateHeader
		case stateTrailer:
			if err := cr.readTrailers(); err != nil {
				return 0, cr.fail(err)
			}
			cr.state = stateDone
		case stateDone:
			return 0, io.EOF
		}
	}
}

func (cr *chunkedReader) fail(err error) error {
	cr.err = err
	return err
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxChunkLine
// bytes, without the terminator.
func (cr *chunkedReader) readLine() ([]byte, error) {
	line, err := cr.br.ReadSlice('\n')
	if err != nil {
		// ErrBufferFull (a huge line), or EOF before a line end.
		return nil, errChunkFormat
	}
	if len(line) > maxChunkLine {
		return nil, errChunkFormat
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}

func (cr *chunkedReader) readChunkHeader() error {
	line, err := cr.readLine()
	if err != nil {
		return err
	}
	sizeField := line
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		sizeField = line[:i]
	}
	sizeField = bytes.TrimSpace(sizeField)
	if len(sizeField) == 0 || len(sizeField) > maxChunkDigits {
		return errChunkFormat
	}
	size, err := strconv.ParseInt(string(sizeField), 16, 64)
	if err != nil || size < 0 {
		return errChunkFormat
	}
	if size > cr.want-cr.decoded {
		return gofakes3.ErrorMessage(gofakes3.ErrIncompleteBody, "aws-chunked body longer than x-amz-decoded-content-length")
	}
	if size == 0 {
		cr.state = stateTrailer
		return nil
	}
	cr.remain = size
	cr.state = stateData
	return nil
}

// readTrailers reads trailer lines up to the empty line that ends the body,
// then checks the length and checksum. A body that ends right after the last
// chunk (no trailer section) is accepted.
func (cr *chunkedReader) readTrailers() error {
	got := cr.expected
	for i := 0; ; i++ {
		if i > maxTrailers {
			return errChunkFormat
		}
		if _, err := cr.br.Peek(1); errors.Is(err, io.EOF) {
			break
		}
		line, err := cr.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return errChunkFormat
		}
		if cr.sumName != "" && strings.EqualFold(string(bytes.TrimSpace(name)), cr.sumName) {
			got = string(bytes.TrimSpace(value))
		}
	}
	if cr.decoded != cr.want {
		return gofakes3.ErrorMessage(gofakes3.ErrIncompleteBody, "aws-chunked body shorter than x-amz-decoded-content-length")
	}
	if cr.sum != nil && got != "" {
		if base64.StdEncoding.EncodeToString(cr.sum.Sum(nil)) != got {
			return gofakes3.ErrorMessagef(gofakes3.ErrBadDigest, "the %s you specified did not match the calculated checksum", strings.TrimPrefix(cr.sumName, "x-amz-checksum-"))
		}
	}
	return nil
}

// bodyReadCloser pairs a decoding reader with the original body's Close.
type bodyReadCloser struct {
	io.Reader
	io.Closer
}

// isAWSChunked reports whether a request body uses aws-chunked framing.
func isAWSChunked(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return true
	}
	for _, v := range r.Header.Values("Content-Encoding") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "aws-chunked") {
				return true
			}
		}
	}
	return false
}

// withoutAWSChunked removes the aws-chunked token from a Content-Encoding
// list, keeping any real encoding (gzip) the object was stored with.
func withoutAWSChunked(values []string) string {
	var keep []string
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "aws-chunked") {
				keep = append(keep, tok)
			}
		}
	}
	return strings.Join(keep, ",")
}

// decodeAWSChunked turns aws-chunked request bodies (signed or unsigned, with
// or without trailing checksums) into plain bodies, because gofakes3 only
// understands the signed variant and only on PutObject. The decoded body
// fails its last read with BadDigest or IncompleteBody when the checksum or
// length is wrong, so nothing is stored (see backend.PutObject).
func decodeAWSChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !isAWSChunked(r) {
			next.ServeHTTP(w, r)
			return
		}
		want, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || want < 0 {
			writeS3Error(w, r, http.StatusLengthRequired, "MissingContentLength", "aws-chunked body needs a valid x-amz-decoded-content-length")
			return
		}
		r2 := r.Clone(r.Context())
		r2.Body = bodyReadCloser{
			Reader: newChunkedReader(r.Body, want, r.Header.Get("X-Amz-Trailer"), r.Header),
			Closer: r.Body,
		}
		r2.ContentLength = want
		r2.TransferEncoding = nil
		r2.Header.Set("Content-Length", strconv.FormatInt(want, 10))
		if enc := withoutAWSChunked(r.Header.Values("Content-Encoding")); enc != "" {
			r2.Header.Set("Content-Encoding", enc)
		} else {
			r2.Header.Del("Content-Encoding")
		}
		r2.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r2.Header.Del("X-Amz-Decoded-Content-Length")
		r2.Header.Del("X-Amz-Trailer")
		next.ServeHTTP(w, r2)
	})
}
