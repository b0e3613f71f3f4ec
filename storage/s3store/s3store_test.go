package s3store

import (
	"bytes"
	"context"
	"errors"
	"github.com/fleetreg/lessee"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tm "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const testBucket = "lessee"

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer runs an embedded server over dir on 127.0.0.1:0 until the
// test ends and returns its base URL.
func startServer(t *testing.T, dir string) (*Server, string) {
	t.Helper()
	srv, err := NewServer(ServerConfig{Dir: dir, Bucket: testBucket, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

func newTestClient(t *testing.T, endpoint string, optFns ...func(*s3.Options)) *Client {
	t.Helper()
	c, err := newClient(context.Background(), Config{
		Endpoint: endpoint, AccessKey: "test", SecretKey: "test", Bucket: testBucket,
	}, optFns...)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	return c
}

// recorder remembers the transfer headers of each request.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD query sha256 content-encoding"
}

func (rc *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, strings.Join([]string{r.Method, r.URL.RawQuery, r.Header.Get("X-Amz-Content-Sha256"), r.Header.Get("Content-Encoding"), r.Header.Get("X-Amz-Trailer")}, " "))
		rc.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (rc *recorder) matching(substrs ...string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
next:
	for _, r := range rc.reqs {
		for _, s := range substrs {
			if !strings.Contains(r, s) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// startTLSServer serves the embedded server over HTTPS, which the SDK needs
// before it sends aws-chunked bodies with trailing checksums, and returns a
// client that computes checksums whenever supported, as AWS CLI v2 does.
func startTLSServer(t *testing.T, dir string) (*Client, *recorder) {
	t.Helper()
	srv, err := NewServer(ServerConfig{Dir: dir, Bucket: testBucket, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	rec := &recorder{}
	ts := httptest.NewTLSServer(rec.wrap(srv.Handler()))
	t.Cleanup(ts.Close)
	c := newTestClient(t, ts.URL, func(o *s3.Options) {
		o.HTTPClient = ts.Client()
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
	})
	return c, rec
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, c *Client, key string, data []byte) {
	t.Helper()
	if err := c.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), "text/csv"); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func download(t *testing.T, c *Client, key string) ([]byte, lessee.Object) {
	t.Helper()
	var buf bytes.Buffer
	obj, err := c.Download(context.Background(), key, "", &buf)
	if err != nil {
		t.Fatalf("Download %s: %v", key, err)
	}
	return buf.Bytes(), obj
}

func listAll(t *testing.T, c *Client, prefix string) map[string]lessee.Object {
	t.Helper()
	got := map[string]lessee.Object{}
	if err := c.List(context.Background(), prefix, func(o lessee.Object) error {
		got[o.Key] = o
		return nil
	}); err != nil {
		t.Fatalf("List %s: %v", prefix, err)
	}
	return got
}

func TestClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, url := startServer(t, dir)
	c := newTestClient(t, url)
	ctx := context.Background()

	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	keys := []string{
		"inbox/923609016/plain.csv",
		"inbox/923609016/with space.csv",
		"inbox/923609016/bil æøå ÆØÅ.csv",
		"inbox/923609016/a+b&c=d%20?.csv",
	}

	t.Run("OK", func(t *testing.T) {
		for i, key := range keys {
			data := []byte(strings.Repeat("regnr,orgnr\n", i+1) + key)
			put(t, c, key, data)

			head, err := c.Head(ctx, key)
			if err != nil {
				t.Fatalf("Head %s: %v", key, err)
			}
			if head.Size != int64(len(data)) || head.ETag == "" || strings.Contains(head.ETag, `"`) {
				t.Fatalf("Head %s = %+v", key, head)
			}
			got, obj := download(t, c, key)
			if !bytes.Equal(got, data) {
				t.Fatalf("Download %s: got %q", key, got)
			}
			if obj.ETag != head.ETag || obj.Size != head.Size {
				t.Fatalf("Download %s object %+v, head %+v", key, obj, head)
			}
			// On disk, under Dir, as a plain file.
			onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", testBucket, filepath.FromSlash(key)))
			if err != nil || !bytes.Equal(onDisk, data) {
				t.Fatalf("file for %s: %v", key, err)
			}

			dst := strings.Replace(key, "inbox/", "archive/", 1)
			if err := c.Copy(ctx, key, dst); err != nil {
				t.Fatalf("Copy %s: %v", key, err)
			}
			if got, _ := download(t, c, dst); !bytes.Equal(got, data) {
				t.Fatalf("copy of %s differs", key)
			}
		}
		listed := listAll(t, c, "inbox/923609016/")
		if len(listed) != len(keys) {
			t.Fatalf("List found %d objects, want %d: %v", len(listed), len(keys), listed)
		}
		for _, key := range keys {
			if _, ok := listed[key]; !ok {
				t.Errorf("List is missing %q", key)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatalf("Delete %s: %v", key, err)
			}
			if _, err := c.Head(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Head after Delete %s: %v", key, err)
			}
		}
		if n := len(listAll(t, c, "archive/")); n != len(keys) {
			t.Fatalf("archive has %d objects, want %d", n, len(keys))
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := c.Head(ctx, "inbox/missing.csv"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head: %v", err)
		}
		if _, err := c.Download(ctx, "inbox/missing æ.csv", "", io.Discard); !errors.Is(err, ErrNotFound) {
			t.Errorf("Download: %v", err)
		}
		if err := c.Copy(ctx, "inbox/missing.csv", "archive/x.csv"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Copy: %v", err)
		}
		if err := c.Delete(ctx, "inbox/missing.csv"); err != nil {
			t.Errorf("Delete of a missing key: %v", err)
		}
	})

	t.Run("ErrPreconditionFailed", func(t *testing.T) {
		key := "inbox/923609016/etag.csv"
		put(t, c, key, []byte("v1"))
		v1, err := c.Head(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := c.Download(ctx, key, v1.ETag, &buf); err != nil || buf.String() != "v1" {
			t.Fatalf("Download with matching ETag: %v %q", err, buf.String())
		}
		put(t, c, key, []byte("v2"))
		if _, err := c.Download(ctx, key, v1.ETag, io.Discard); !errors.Is(err, ErrPreconditionFailed) {
			t.Fatalf("Download with stale ETag: %v", err)
		}
	})

	t.Run("ListHeadConsistent", func(t *testing.T) {
		put(t, c, "inbox/consistent/a.csv", []byte("a,b\n1,2\n"))
		put(t, c, "inbox/consistent/b.csv", randomBytes(300_000))
		for key, listed := range listAll(t, c, "inbox/consistent/") {
			head, err := c.Head(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if listed.ETag != head.ETag || listed.Size != head.Size {
				t.Errorf("%s: list %+v, head %+v", key, listed, head)
			}
			if !listed.LastModified.Truncate(time.Second).Equal(head.LastModified) {
				t.Errorf("%s: list LastModified %v, head %v", key, listed.LastModified, head.LastModified)
			}
		}
	})
}

func TestClientPutMultipart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, url := startServer(t, dir)
	c := newTestClient(t, url)
	c.multipartThreshold, c.partSize = 6<<20, 5<<20
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		data := randomBytes(13<<20 + 17)
		key := "inbox/923609016/stor fil.xlsx"
		put(t, c, key, data)
		if got, _ := download(t, c, key); !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ")
		}
		head, err := c.Head(ctx, key)
		if err != nil || head.Size != int64(len(data)) {
			t.Fatalf("Head = %+v, %v", head, err)
		}
	})

	t.Run("ErrBodyFailsMidway", func(t *testing.T) {
		key := "inbox/923609016/broken.csv"
		body := &failingReader{r: bytes.NewReader(randomBytes(13 << 20)), failAt: 7 << 20}
		err := c.Put(ctx, key, body, body.r.Size(), "")
		if err == nil {
			t.Fatal("Put succeeded with a failing body")
		}
		if _, err := c.Head(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Head after failed Put: %v", err)
		}
		out, err := c.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Fatalf("%d multipart uploads left behind", len(out.Uploads))
		}
	})
}

// failingReader fails once failAt bytes have been read.
type failingReader struct {
	r      *bytes.Reader
	failAt int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	pos := f.r.Size() - int64(f.r.Len())
	if pos >= f.failAt {
		return 0, errors.New("disk on fire")
	}
	if rest := f.failAt - pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	return f.r.Read(p)
}

func (f *failingReader) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }

func TestTrailingChecksums(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, rec := startTLSServer(t, dir)
	ctx := context.Background()

	t.Run("OK/UploadManagerMultipart", func(t *testing.T) {
		data := randomBytes(11<<20 + 3)
		key := "inbox/923609016/multi æøå.csv"
		up := tm.New(c.s3, func(o *tm.Options) {
			o.PartSizeBytes = 5 << 20
			o.MultipartUploadThreshold = 5 << 20
		})
		if _, err := up.UploadObject(ctx, &tm.UploadObjectInput{
			Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(data),
		}); err != nil {
			t.Fatalf("UploadObject: %v", err)
		}
		parts := rec.matching("PUT", "partNumber=", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "aws-chunked", "x-amz-checksum-crc32")
		if len(parts) != 3 {
			t.Fatalf("want 3 aws-chunked UploadPart requests with a CRC32 trailer, got %q", rec.matching("PUT"))
		}
		if got, _ := download(t, c, key); !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ")
		}
		onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", testBucket, filepath.FromSlash(key)))
		if err != nil || !bytes.Equal(onDisk, data) {
			t.Fatalf("file on disk: %v", err)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(entries) != 0 {
			t.Fatalf("uploads folder not cleaned: %v", entries)
		}
	})

	t.Run("OK/PutObjectTrailer", func(t *testing.T) {
		data := randomBytes(1<<20 + 5)
		key := "inbox/923609016/single.csv"
		_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(testBucket), Key: aws.String(key),
			Body: bytes.NewReader(data), ContentType: aws.String("text/csv"),
		})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		if n := len(rec.matching("PUT", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "aws-chunked")); n == 0 {
			t.Fatalf("PutObject was not sent aws-chunked: %q", rec.matching("PUT"))
		}
		got, _ := download(t, c, key)
		if !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ")
		}
		// The object must come back as plain bytes, without transfer metadata.
		out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if enc := aws.ToString(out.ContentEncoding); enc != "" {
			t.Errorf("Content-Encoding %q stored", enc)
		}
		if ct := aws.ToString(out.ContentType); ct != "text/csv" {
			t.Errorf("Content-Type %q, want text/csv", ct)
		}
	})
}

func TestRawChunkedRequests(t *testing.T) {
	t.Parallel()
	srv, err := NewServer(ServerConfig{Dir: t.TempDir(), Bucket: testBucket, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	data := []byte(strings.Repeat("AB12345,923609016,01017000000\n", 200))

	do := func(t *testing.T, method, target string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, target, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	get := func(t *testing.T, target string) (int, []byte) {
		t.Helper()
		w := do(t, http.MethodGet, target, nil, nil)
		return w.Code, w.Body.Bytes()
	}
	chunkedHdr := func(sha, trailer string) map[string]string {
		m := map[string]string{
			"X-Amz-Content-Sha256":         sha,
			"X-Amz-Decoded-Content-Length": "6000",
			"Content-Encoding":             "aws-chunked",
		}
		if trailer != "" {
			m["X-Amz-Trailer"] = trailer
		}
		return m
	}

	t.Run("OK/SignedPutObject", func(t *testing.T) {
		w := do(t, http.MethodPut, "/lessee/inbox/signed.csv", encodeChunked(t, data, 1024, true), chunkedHdr("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ""))
		if w.Code != http.StatusOK {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
		if code, got := get(t, "/lessee/inbox/signed.csv"); code != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("OK/SignedTrailerUploadPart", func(t *testing.T) {
		w := do(t, http.MethodPost, "/lessee/inbox/parts.csv?uploads", nil, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		id := between(w.Body.String(), "<UploadId>", "</UploadId>")
		body := encodeChunked(t, data, 999, true, "x-amz-checksum-crc32:"+crc32Base64(data), "x-amz-trailer-signature:00")
		w = do(t, http.MethodPut, "/lessee/inbox/parts.csv?partNumber=1&uploadId="+id, body, chunkedHdr("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "x-amz-checksum-crc32"))
		if w.Code != http.StatusOK {
			t.Fatalf("upload part: %d %s", w.Code, w.Body)
		}
		etag := w.Header().Get("ETag")
		complete := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
		w = do(t, http.MethodPost, "/lessee/inbox/parts.csv?uploadId="+id, []byte(complete), nil)
		if w.Code != http.StatusOK {
			t.Fatalf("complete: %d %s", w.Code, w.Body)
		}
		if code, got := get(t, "/lessee/inbox/parts.csv"); code != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("ErrBadDigest", func(t *testing.T) {
		body := encodeChunked(t, data, 4096, false, "x-amz-checksum-crc32:AAAAAA==")
		w := do(t, http.MethodPut, "/lessee/inbox/bad.csv", body, chunkedHdr("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32"))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "BadDigest") {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
		if code, _ := get(t, "/lessee/inbox/bad.csv"); code != http.StatusNotFound {
			t.Fatalf("object stored despite bad checksum: GET %d", code)
		}
	})

	t.Run("ErrIncompleteBody", func(t *testing.T) {
		body := encodeChunked(t, data, 4096, false)
		w := do(t, http.MethodPut, "/lessee/inbox/short.csv", body[:len(body)/2], chunkedHdr("STREAMING-UNSIGNED-PAYLOAD-TRAILER", ""))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
		if code, _ := get(t, "/lessee/inbox/short.csv"); code != http.StatusNotFound {
			t.Fatalf("partial object stored: GET %d", code)
		}
	})

	t.Run("ErrMissingDecodedLength", func(t *testing.T) {
		w := do(t, http.MethodPut, "/lessee/inbox/nolen.csv", encodeChunked(t, data, 4096, false), map[string]string{"Content-Encoding": "aws-chunked"})
		if w.Code != http.StatusLengthRequired {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
	})
}

func between(s, start, end string) string {
	_, after, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestServerPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := randomBytes(100_000)
	key := "inbox/923609016/kept æ.csv"

	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ServerConfig{Dir: dir, Bucket: testBucket, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c := newTestClient(t, "http://"+ln.Addr().String())
	put(t, c, key, data)
	first, err := c.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}

	_, url := startServer(t, dir)
	c2 := newTestClient(t, url)
	got, obj := download(t, c2, key)
	if !bytes.Equal(got, data) {
		t.Fatal("object differs after restart")
	}
	if obj.ETag != first.ETag || !obj.LastModified.Equal(first.LastModified) {
		t.Fatalf("after restart %+v, before %+v", obj, first)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Fatalf("tmp not empty: %v", entries)
	}
}

func TestNewServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  ServerConfig
	}{
		{"ErrEmptyDir", ServerConfig{Bucket: testBucket}},
		{"ErrBadBucket", ServerConfig{Dir: t.TempDir(), Bucket: "Not_A_Bucket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewServer(tt.cfg); err == nil {
				t.Fatal("NewServer succeeded")
			}
		})
	}
}

func TestCopySource(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"inbox/a.csv":        "lessee/inbox/a.csv",
		"inbox/with space":   "lessee/inbox/with%20space",
		"inbox/æ":            "lessee/inbox/%C3%A6",
		"inbox/a+b?c=d&e%20": "lessee/inbox/a%2Bb%3Fc%3Dd%26e%2520",
	}
	for key, want := range tests {
		if got := copySource("lessee", key); got != want {
			t.Errorf("copySource(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestClientPutFile(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, t.TempDir())
	c := newTestClient(t, url)
	ctx := context.Background()
	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "changes.csv")
	data := []byte("operation,vin\nadd,WVWZZZ1JZXW000001\n")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "inbox/923609016/changes.csv"
	if err := c.PutFile(ctx, key, path, "text/csv"); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := c.Download(ctx, key, "", &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("downloaded %q, %v; want %q", got.Bytes(), err, data)
	}
	err := c.PutFile(ctx, "inbox/923609016/missing.csv", filepath.Join(t.TempDir(), "missing.csv"), "text/csv")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "inbox/923609016/missing.csv") {
		t.Errorf("PutFile of a missing file: %v", err)
	}
}
