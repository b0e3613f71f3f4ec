package s3store

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Folders under ServerConfig.Dir. Objects live at buckets/<bucket>/<key>;
// gofakes3 keeps its per-object JSON (MD5, metadata) under metadata/.
const (
	dirBuckets = "buckets"
	dirTmp     = "tmp"
	dirUploads = "uploads"
)

// staleUploadAge is how long an unfinished multipart upload is kept across
// restarts before its parts are removed, like an S3 lifecycle rule.
const staleUploadAge = 7 * 24 * time.Hour

// ServerConfig configures the embedded S3-compatible endpoint.
type ServerConfig struct {
	Dir    string       // where objects are stored; created if missing
	Bucket string       // created if missing
	Logger *slog.Logger // nil means slog.Default()
	// Now, if set, stamps every stored object's LastModified instead of
	// the system clock, so that tests move time on rather than sleep.
	Now func() time.Time
}

// Server is an in-process S3-compatible endpoint over a folder, built on
// gofakes3. It serves path-style requests without authentication: bind it
// to loopback.
type Server struct {
	handler http.Handler
	log     *slog.Logger
}

// NewServer opens (or creates) the store in cfg.Dir and creates cfg.Bucket
// if it is missing. Leftover temporary files from a crash are removed.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("s3 server: empty dir")
	}
	if err := gofakes3.ValidateBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 server: bucket %q: %w", cfg.Bucket, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("s3 server: %w", err)
	}
	// A crash leaves only temporary files behind (objects are renamed into
	// place), so the tmp folder can be emptied on start.
	if err := os.RemoveAll(filepath.Join(dir, dirTmp)); err != nil {
		return nil, fmt.Errorf("s3 server: clean tmp: %w", err)
	}
	for _, d := range []string{dirTmp, dirUploads, dirBuckets} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("s3 server: %w", err)
		}
	}

	base := afero.NewBasePathFs(afero.NewOsFs(), dir)
	objects := &atomicFs{Fs: base, tmpDir: dirTmp}
	metaFs, err := s3afero.NewBasePathFs(objects, "metadata", s3afero.FsPathCreateAll)
	if err != nil {
		return nil, fmt.Errorf("s3 server: open metadata: %w", err)
	}
	inner, err := s3afero.MultiBucket(objects, s3afero.MultiWithMetaFs(shortNameFs{metaFs}))
	if err != nil {
		return nil, fmt.Errorf("s3 server: open backend: %w", err)
	}
	b := &backend{
		MultiBucketBackend: inner,
		bucketsDir:         filepath.Join(dir, dirBuckets),
		tmpDir:             filepath.Join(dir, dirTmp),
		uploads:            &diskUploads{dir: filepath.Join(dir, dirUploads)},
		now:                cfg.Now,
	}
	b.uploads.put = inner.PutObject
	if n, err := b.uploads.removeStale(time.Now().Add(-staleUploadAge)); err != nil {
		logger.Warn("s3 server: remove stale multipart uploads", "err", err)
	} else if n > 0 {
		logger.Info("s3 server: removed stale multipart uploads", "count", n)
	}

	exists, err := b.BucketExists(cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 server: bucket %s: %w", cfg.Bucket, err)
	}
	if !exists {
		if err := b.CreateBucket(cfg.Bucket); err != nil {
			return nil, fmt.Errorf("s3 server: create bucket %s: %w", cfg.Bucket, err)
		}
	}

	fake := gofakes3.New(b,
		gofakes3.WithLogger(slogAdapter{logger}),
		// No authentication happens here, so a skewed client clock is no reason to refuse.
		gofakes3.WithTimeSkewLimit(0),
		gofakes3.WithIntegrityCheck(true),
	)
	h := fake.Server()
	h = ifMatch(b, h)
	h = copySourceIfMatch(b, h)
	h = refuseUncleanKeys(h)
	h = stripTransportHeaders(h)
	h = decodeAWSChunked(h)
	return &Server{handler: h, log: logger}, nil
}

// Handler returns the S3 API handler.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on addr and serves until ctx is done, then shuts
// down gracefully (in-flight requests get 10 s).
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("s3 server: listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down gracefully. It
// closes ln. Tests use it with a 127.0.0.1:0 listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("s3 server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("s3 server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("s3 server: %w", err)
	}
	return nil
}

// slogAdapter routes gofakes3's chatty logging to slog at debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Print(level gofakes3.LogLevel, v ...any) {
	a.l.Debug("gofakes3: "+strings.TrimSpace(fmt.Sprintln(v...)), "level", string(level))
}

// backend wraps the s3afero backend:
//   - PutObject spools the body to a temporary file first, so the backend's
//     global lock is held for a local copy rather than a slow upload, and a
//     failed or short body stores nothing;
//   - multipart parts go to disk (diskUploads) instead of memory;
//   - Head and Get report Last-Modified from the file, as List does.
type backend struct {
	*s3afero.MultiBucketBackend
	bucketsDir string
	tmpDir     string
	uploads    *diskUploads
	now        func() time.Time // nil: the file system's own time
}

var (
	_ gofakes3.Backend          = (*backend)(nil)
	_ gofakes3.MultipartBackend = (*backend)(nil)
)

func (b *backend) PutObject(bucket, object string, meta map[string]string, input io.Reader, size int64, conds *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	var res gofakes3.PutObjectResult
	f, err := os.CreateTemp(b.tmpDir, "put-*")
	if err != nil {
		return res, err
	}
	defer os.Remove(f.Name())
	defer func() { _ = f.Close() }() // a spool: stored from, then removed
	n, err := io.Copy(f, input)
	if err != nil {
		// Errors from the body (BadDigest, IncompleteBody) reach the client as they are.
		return res, err
	}
	if n != size {
		return res, gofakes3.ErrIncompleteBody
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	res, err = b.MultiBucketBackend.PutObject(bucket, object, meta, f, n, conds)
	if err != nil {
		return res, err
	}
	return res, b.stamp(bucket, object)
}

// stamp sets a stored object's modification time, which is its
// LastModified, from the configured clock.
func (b *backend) stamp(bucket, object string) error {
	if b.now == nil {
		return nil
	}
	t := b.now()
	return os.Chtimes(filepath.Join(b.bucketsDir, bucket, filepath.FromSlash(object)), t, t)
}

func (b *backend) HeadObject(bucket, object string) (*gofakes3.Object, error) {
	obj, err := b.MultiBucketBackend.HeadObject(bucket, object)
	if err != nil {
		return nil, err
	}
	b.fileLastModified(bucket, obj)
	return obj, nil
}

func (b *backend) GetObject(bucket, object string, rnge *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	obj, err := b.MultiBucketBackend.GetObject(bucket, object, rnge)
	if err != nil {
		return nil, err
	}
	b.fileLastModified(bucket, obj)
	return obj, nil
}

// fileLastModified replaces the Last-Modified that gofakes3 recorded when the
// PUT request arrived with the file's modification time, which is what
// ListObjects reports; the two would otherwise differ by the upload time.
func (b *backend) fileLastModified(bucket string, obj *gofakes3.Object) {
	st, err := os.Stat(filepath.Join(b.bucketsDir, bucket, filepath.FromSlash(obj.Name)))
	if err != nil {
		return
	}
	if obj.Metadata == nil {
		obj.Metadata = map[string]string{}
	}
	obj.Metadata["Last-Modified"] = st.ModTime().UTC().Format(http.TimeFormat)
}

func (b *backend) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	return b.uploads.create(bucket, object, meta)
}

func (b *backend) UploadPart(bucket, object string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	return b.uploads.uploadPart(bucket, object, id, partNumber, contentLength, input)
}

func (b *backend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	return b.uploads.list(bucket, marker, prefix, limit)
}

func (b *backend) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	return b.uploads.listParts(bucket, object, id, marker, limit)
}

func (b *backend) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	return b.uploads.abort(bucket, object, id)
}

func (b *backend) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	etag, err := b.uploads.complete(bucket, object, id, in)
	if err != nil {
		return "", etag, err
	}
	return "", etag, b.stamp(bucket, object)
}

// atomicFs makes Create write to a temporary file that is renamed over the
// target on Close, so a crash mid-write never leaves a partial object.
// s3afero writes objects only through Create.
type atomicFs struct {
	afero.Fs
	tmpDir string
}

func (a *atomicFs) Create(name string) (afero.File, error) {
	tmp := path.Join(a.tmpDir, "obj-"+randomHex(12))
	f, err := a.Fs.Create(tmp)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, fs: a.Fs, tmp: tmp, final: name}, nil
}

type atomicFile struct {
	afero.File
	fs         afero.Fs
	tmp, final string
	failed     bool
	closed     bool
}

func (f *atomicFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if err != nil {
		f.failed = true
	}
	return n, err
}

func (f *atomicFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.failed {
		err = errors.New("write failed")
	}
	if err == nil {
		err = f.fs.Rename(f.tmp, f.final)
	}
	if err != nil {
		_ = f.fs.Remove(f.tmp)
		return fmt.Errorf("commit %s: %w", f.final, err)
	}
	return nil
}

// stripTransportHeaders drops request headers that describe the transfer,
// not the object, before gofakes3 sees them: gofakes3 stores every X-Amz-*
// request header as object metadata and echoes it on GET, and a stale
// x-amz-checksum-* echoed on a ranged GET would fail a validating client.
func stripTransportHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			for k := range r.Header {
				lk := strings.ToLower(k)
				switch {
				case strings.HasPrefix(lk, "x-amz-checksum-"),
					strings.HasPrefix(lk, "x-amz-sdk-"),
					lk == "x-amz-content-sha256",
					lk == "x-amz-decoded-content-length",
					lk == "x-amz-trailer",
					lk == "x-amz-date",
					lk == "x-amz-security-token",
					lk == "x-amz-user-agent",
					lk == "x-amz-expected-bucket-owner",
					lk == "x-amz-request-payer":
					r.Header.Del(k)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ifMatch answers GET and HEAD with an If-Match header that names another
// ETag with 412 PreconditionFailed; gofakes3 ignores If-Match on reads. The
// check and the read are not one atomic step, so an overwrite in between can
// slip through; the worker's ETag check after download covers that.
func ifMatch(b *backend, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := r.Header.Get("If-Match")
		if want == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		bucket, object, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		precondition(b, bucket, object, want, next).ServeHTTP(w, r)
	})
}

// copySourceIfMatch answers a copy (PUT with X-Amz-Copy-Source) whose
// X-Amz-Copy-Source-If-Match names another ETag than the source's with 412
// PreconditionFailed; gofakes3 ignores the header. As for ifMatch, check
// and copy are not one atomic step.
func copySourceIfMatch(b *backend, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want, src := r.Header.Get("X-Amz-Copy-Source-If-Match"), r.Header.Get("X-Amz-Copy-Source")
		if want == "" || src == "" || r.Method != http.MethodPut {
			next.ServeHTTP(w, r)
			return
		}
		src, err := url.PathUnescape(strings.TrimPrefix(src, "/"))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		src, _, _ = strings.Cut(src, "?versionId=")
		bucket, object, _ := strings.Cut(src, "/")
		precondition(b, bucket, object, want, next).ServeHTTP(w, r)
	})
}

// precondition passes the request on when the object's ETag is one of
// want's (or want is "*"), or when there is no such object (gofakes3 then
// answers NoSuchKey or NoSuchBucket), and answers 412 otherwise.
func precondition(b *backend, bucket, object, want string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if object == "" {
			next.ServeHTTP(w, r)
			return
		}
		obj, err := b.MultiBucketBackend.HeadObject(bucket, object)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		etag := hex.EncodeToString(obj.Hash)
		for _, tok := range strings.Split(want, ",") {
			tok = strings.Trim(strings.TrimSpace(tok), `"`)
			if tok == "*" || tok == etag {
				next.ServeHTTP(w, r)
				return
			}
		}
		writeS3Error(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	})
}

// refuseUncleanKeys answers 400 for object keys that a file system would
// read differently from S3: '.', '..' or empty segments, a leading '/',
// control characters or invalid UTF-8. Objects live as files under the data
// directory, so such a key could land in another company's prefix, and
// XML listings cannot carry control characters.
func refuseUncleanKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if !cleanKey(key) {
			writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", "object keys may not contain '.', '..' or empty path segments, a leading '/', or control characters")
			return
		}
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			decoded, err := url.PathUnescape(strings.SplitN(src, "?", 2)[0])
			_, srcKey, _ := strings.Cut(strings.TrimPrefix(decoded, "/"), "/")
			if err != nil || !cleanKey(srcKey) {
				writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", "invalid copy source key")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cleanKey reports whether key (possibly empty, for bucket requests, or a
// folder marker ending in '/') maps to exactly one path under the bucket.
func cleanKey(key string) bool {
	if key == "" {
		return true
	}
	if !utf8.ValidString(key) || strings.HasPrefix(key, "/") {
		return false
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff {
			return false
		}
	}
	for _, seg := range strings.Split(strings.TrimSuffix(key, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// writeS3Error writes an S3-style XML error.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: code, Message: msg})
}
