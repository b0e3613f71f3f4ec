package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	tm "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/fleetreg/lessee"
)

// ErrNotFound means the object (or a copy source) does not exist. Its code
// is lessee.ENOTFOUND, which is what callers outside this package check.
var ErrNotFound = &lessee.Error{Code: lessee.ENOTFOUND, Message: "object not found"}

// ErrPreconditionFailed means an If-Match ETag did not match: the object was
// replaced since it was listed. Its code is lessee.ECONFLICT.
var ErrPreconditionFailed = &lessee.Error{Code: lessee.ECONFLICT, Message: "object precondition failed"}

// Sizes for Put: objects up to multipartThreshold go in one PutObject;
// larger ones in parts of partSize, completed only when all parts are in.
const (
	defaultMultipartThreshold = 64 << 20
	defaultPartSize           = 16 << 20
	uploadConcurrency         = 2
)

// Config configures a Client.
type Config struct {
	// Endpoint is an S3-compatible base URL (MinIO, the embedded server);
	// empty means AWS's own endpoint resolution. Set, it implies path-style
	// addressing.
	Endpoint string
	// Region defaults to us-east-1.
	Region string
	// AccessKey and SecretKey are static credentials; empty means the AWS
	// default chain (environment, shared config, instance role). The
	// embedded server accepts any keys.
	AccessKey, SecretKey string
	Bucket               string
}

// Client is an S3 client bound to one bucket.
type Client struct {
	s3     *s3.Client
	bucket string
	// Unexported so tests can exercise multipart with small files.
	multipartThreshold int64
	partSize           int64
}

// NewClient builds a client. It does not contact the store; see Ping.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	return newClient(ctx, cfg)
}

// newClient is NewClient with extra s3 options, for tests (TLS, checksums).
func newClient(ctx context.Context, cfg Config, optFns ...func(*s3.Options)) (*Client, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 client: empty bucket")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	loadOpts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 client: load config: %w", err)
	}
	opts := append([]func(*s3.Options){func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		// Since service/s3 v1.73 the SDK sends CRC32 trailers and validates
		// response checksums by default; S3-compatible stores often choke on both.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}}, optFns...)
	return &Client{
		s3:                 s3.NewFromConfig(awsCfg, opts...),
		bucket:             cfg.Bucket,
		multipartThreshold: defaultMultipartThreshold,
		partSize:           defaultPartSize,
	}, nil
}

// Bucket returns the bucket the client works on.
func (c *Client) Bucket() string { return c.bucket }

// EnsureBucket creates the bucket unless it already exists.
func (c *Client) EnsureBucket(ctx context.Context) error {
	if err := c.Ping(ctx); err == nil {
		return nil
	}
	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(c.bucket)})
	if err != nil {
		switch errorCode(err) {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", c.bucket, err)
	}
	return nil
}

// Ping checks that the bucket is reachable (HeadBucket).
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.bucket)}); err != nil {
		return fmt.Errorf("head bucket %s: %w", c.bucket, err)
	}
	return nil
}

// List calls fn for each object under prefix, in key order, following
// ListObjectsV2 pagination. An error from fn stops the listing and is
// returned as is.
//
// Keys are asked for URL-encoded: S3 and MinIO write them into XML as they
// are, and a key holding a character XML cannot carry (U+0001, say) would
// otherwise make every listing of its prefix fail to parse, stalling every
// company's files behind one upload. A store that ignores the request
// (the embedded one) says so by not echoing the encoding type, and its
// keys are taken as they are.
func (c *Client) List(ctx context.Context, prefix string, fn func(lessee.Object) error) error {
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{
		Bucket:       aws.String(c.bucket),
		Prefix:       aws.String(prefix),
		EncodingType: types.EncodingTypeUrl,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if page.EncodingType == types.EncodingTypeUrl {
				// Encoded as a query value: '+' is a space, a '+' is %2B.
				if key, err = url.QueryUnescape(key); err != nil {
					return fmt.Errorf("list %s: decode key %q: %w", prefix, aws.ToString(o.Key), err)
				}
			}
			err := fn(lessee.Object{
				Key:          key,
				Size:         aws.ToInt64(o.Size),
				ETag:         trimETag(aws.ToString(o.ETag)),
				LastModified: aws.ToTime(o.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Head returns an object's metadata, or ErrNotFound.
func (c *Client) Head(ctx context.Context, key string) (lessee.Object, error) {
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		return lessee.Object{}, fmt.Errorf("head %s: %w", key, classify(err))
	}
	return lessee.Object{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         trimETag(aws.ToString(out.ETag)),
		VersionID:    aws.ToString(out.VersionId),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Download streams the object into w. With ifMatchETag set, it fails with
// ErrPreconditionFailed when the object's ETag differs (it was replaced).
// A failure after some bytes were written leaves them in w: callers write to
// a temporary file and discard it on error.
func (c *Client) Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (lessee.Object, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	if ifMatchETag != "" {
		in.IfMatch = aws.String(`"` + trimETag(ifMatchETag) + `"`)
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		return lessee.Object{}, fmt.Errorf("get %s: %w", key, classify(err))
	}
	defer out.Body.Close()
	obj := lessee.Object{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         trimETag(aws.ToString(out.ETag)),
		VersionID:    aws.ToString(out.VersionId),
		LastModified: aws.ToTime(out.LastModified),
	}
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return obj, fmt.Errorf("read %s: %w", key, err)
	}
	if out.ContentLength != nil && n != obj.Size {
		return obj, fmt.Errorf("read %s: got %d of %d bytes: %w", key, n, obj.Size, io.ErrUnexpectedEOF)
	}
	return obj, nil
}

// Put stores body (size bytes) at key so that the object is either complete
// or absent: one PutObject up to 64 MiB, above that a multipart upload that
// is completed only after every part is in and aborted on failure.
func (c *Client) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	var ct *string
	if contentType != "" {
		ct = aws.String(contentType)
	}
	if size <= c.multipartThreshold {
		_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(c.bucket),
			Key:           aws.String(key),
			Body:          body,
			ContentLength: aws.Int64(size),
			ContentType:   ct,
		})
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	up := tm.New(c.s3, func(o *tm.Options) {
		// The first read buffers up to the threshold, so keep it at one part.
		o.PartSizeBytes = c.partSize
		o.MultipartUploadThreshold = c.partSize
		o.Concurrency = uploadConcurrency
		// The transfer manager's own default (CRC32 trailers) overrides the client's.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.FailTimeout = 30 * time.Second
	})
	_, err := up.UploadObject(ctx, &tm.UploadObjectInput{
		Bucket:        aws.String(c.bucket),
		Key:           aws.String(key),
		Body:          io.LimitReader(body, size),
		ContentLength: aws.Int64(size),
		ContentType:   ct,
	})
	if err != nil {
		return fmt.Errorf("put %s (multipart): %w", key, err)
	}
	return nil
}

// PutFile uploads the local file at path as key.
func (c *Client) PutFile(ctx context.Context, key, path, contentType string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	defer func() { _ = f.Close() }() // only read
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	if err := c.Put(ctx, key, f, st.Size(), contentType); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

// Copy copies srcKey to dstKey within the bucket; ErrNotFound if srcKey is
// missing.
func (c *Client) Copy(ctx context.Context, srcKey, dstKey string) error {
	_, err := c.s3.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     aws.String(c.bucket),
		Key:        aws.String(dstKey),
		CopySource: aws.String(copySource(c.bucket, srcKey)),
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, classify(err))
	}
	return nil
}

// CopyIfMatch copies srcKey to dstKey server-side if srcKey's ETag is
// etag (any, when etag is ""), and returns the copy's ETag. A source that
// is gone fails with ErrNotFound, one replaced with ErrPreconditionFailed.
// S3 and MinIO check the condition and copy in one step; the embedded
// endpoint checks just before copying, as it does for GET's If-Match.
func (c *Client) CopyIfMatch(ctx context.Context, srcKey, dstKey, etag string) (string, error) {
	in := &s3.CopyObjectInput{
		Bucket:     aws.String(c.bucket),
		Key:        aws.String(dstKey),
		CopySource: aws.String(copySource(c.bucket, srcKey)),
	}
	etag = trimETag(etag)
	if etag != "" {
		in.CopySourceIfMatch = aws.String(`"` + etag + `"`)
	}
	if _, err := c.s3.CopyObject(ctx, in); err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, classify(err))
	}
	// The copy's ETag as HEAD and GET report it (some stores format the
	// copy result's differently).
	o, err := c.Head(ctx, dstKey)
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
	}
	got := o.ETag
	return got, nil
}

// Delete removes key; deleting a missing key is not an error (S3 semantics).
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: "bucket/key" percent-encoded
// byte by byte (UTF-8 æøå, spaces as %20), slashes kept.
func copySource(bucket, key string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		ch := key[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '-', ch == '_', ch == '.', ch == '~', ch == '/':
			b.WriteByte(ch)
		default:
			// Everything else, "+" included, so that query-style decoders
			// do not read it as a space.
			b.WriteByte('%')
			b.WriteByte(hexDigits[ch>>4])
			b.WriteByte(hexDigits[ch&15])
		}
	}
	return b.String()
}

func trimETag(s string) string { return strings.Trim(s, `"`) }

// errorCode returns the S3 error code of err, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// classify maps S3 errors to ErrNotFound and ErrPreconditionFailed, keeping
// the original error in the chain. HEAD responses have no body, so the
// status code decides there.
func classify(err error) error {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case "PreconditionFailed":
		return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusNotFound:
			if errorCode(err) != "NoSuchBucket" {
				return fmt.Errorf("%w: %w", ErrNotFound, err)
			}
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
		}
	}
	return err
}
