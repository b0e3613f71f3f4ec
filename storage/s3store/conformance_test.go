package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/s3store/s3storetest"
)

// startMinIO runs a MinIO server until the test ends and returns a client
// of its bucket.
func startMinIO(t *testing.T) *Client {
	t.Helper()
	m := s3storetest.StartMinIO(t)
	c, err := newClient(context.Background(), Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: testBucket})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformance runs one suite of what the service relies on against a
// real MinIO server and against the embedded endpoint, so that the two are
// held to one behaviour: keys with spaces, æøå, '+', '%' and long names
// round-trip through put, list, head, conditional get, copy and delete;
// multipart uploads land whole; a 1,000-byte key works. The one difference
// is a key holding a character XML cannot carry: MinIO stores it and must
// still list (the client asks for URL-encoded keys), the embedded endpoint
// refuses it.
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		_, url := startServer(t, t.TempDir())
		c := newTestClient(t, url)
		if err := c.EnsureBucket(context.Background()); err != nil {
			t.Fatal(err)
		}
		conformance(t, c, false)
	})
	t.Run("MinIO", func(t *testing.T) {
		t.Parallel()
		conformance(t, startMinIO(t), true)
	})
}

func conformance(t *testing.T, c *Client, realS3 bool) {
	ctx := context.Background()
	const dir = "inbox/912345602/"
	keys := []string{
		dir + "plain.csv",
		dir + "with space.csv",
		dir + "bil æøå ÆØÅ.csv",
		dir + "a+b.csv",
		dir + "100% sure.csv",
		dir + "a%2Bb+%20.csv",
	}
	// A 1,000-byte key (a file system limits each segment to 255 bytes).
	keys = append(keys, dir+strings.Repeat(strings.Repeat("n", 240)+"/", 4)+strings.Repeat("n", 1000-len(dir)-4*241-len(".csv"))+".csv")
	for i, key := range keys {
		body := []byte(fmt.Sprintf("row %d of %q\n", i, key))
		if err := c.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "text/csv"); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
	}

	bad := dir + "ctrl\x01name.csv"
	badBody := fmt.Sprintf("row of %q\n", bad)
	err := c.Put(ctx, bad, strings.NewReader(badBody), int64(len(badBody)), "text/csv")
	switch {
	case realS3 && err != nil:
		t.Fatalf("put %q: %v", bad, err)
	case !realS3 && err == nil:
		t.Fatalf("the embedded endpoint stored %q; it must refuse keys with control characters", bad)
	case realS3:
		keys = append(keys, bad)
	}

	t.Run("List", func(t *testing.T) {
		var listed []string
		err := c.List(ctx, dir, func(o lessee.Object) error {
			listed = append(listed, o.Key)
			if o.Size == 0 || o.ETag == "" || o.LastModified.IsZero() {
				t.Errorf("listed %q without size, ETag or time: %+v", o.Key, o)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		want := slices.Sorted(slices.Values(keys))
		if !slices.Equal(listed, want) {
			t.Fatalf("listed\n%q\nwant\n%q", listed, want)
		}
	})
	t.Run("HeadGetCopyDelete", func(t *testing.T) {
		for _, key := range keys {
			head, err := c.Head(ctx, key)
			if err != nil {
				t.Fatalf("head %q: %v", key, err)
			}
			var buf bytes.Buffer
			if _, err := c.Download(ctx, key, head.ETag, &buf); err != nil || !strings.Contains(buf.String(), fmt.Sprintf("%q", key)) {
				t.Fatalf("get %q if-match: %q, %v", key, buf.String(), err)
			}
			if _, err := c.Download(ctx, key, "0123456789abcdef0123456789abcdef", &bytes.Buffer{}); lessee.ErrorCode(err) != lessee.ECONFLICT {
				t.Fatalf("get %q with a stale ETag: %v, want a conflict", key, err)
			}
			pinned := "pinned/" + strings.TrimPrefix(key, "inbox/")
			if _, err := c.CopyIfMatch(ctx, key, pinned, "0123456789abcdef0123456789abcdef"); lessee.ErrorCode(err) != lessee.ECONFLICT {
				t.Fatalf("copy %q if-match a stale ETag: %v, want a conflict", key, err)
			}
			if _, err := c.Head(ctx, pinned); lessee.ErrorCode(err) != lessee.ENOTFOUND {
				t.Fatalf("a copy refused by its condition left %q: %v", pinned, err)
			}
			if etag, err := c.CopyIfMatch(ctx, key, pinned, head.ETag); err != nil || etag == "" {
				t.Fatalf("copy %q if-match: %q, %v", key, etag, err)
			}
			var pin bytes.Buffer
			if _, err := c.Download(ctx, pinned, "", &pin); err != nil || pin.String() != buf.String() {
				t.Fatalf("pinned copy of %q: %q, %v", key, pin.String(), err)
			}
			dst := "archive/" + strings.TrimPrefix(key, "inbox/")
			if err := c.Copy(ctx, key, dst); err != nil {
				t.Fatalf("copy %q: %v", key, err)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatalf("delete %q: %v", key, err)
			}
			if _, err := c.Head(ctx, key); lessee.ErrorCode(err) != lessee.ENOTFOUND {
				t.Fatalf("head of deleted %q: %v, want not found", key, err)
			}
			var moved bytes.Buffer
			if _, err := c.Download(ctx, dst, "", &moved); err != nil || moved.String() != buf.String() {
				t.Fatalf("copy of %q: %q, %v", key, moved.String(), err)
			}
		}
		if err := c.Copy(ctx, dir+"gone.csv", "archive/gone.csv"); lessee.ErrorCode(err) != lessee.ENOTFOUND {
			t.Fatalf("copy of a missing object: %v, want not found", err)
		}
		if _, err := c.CopyIfMatch(ctx, dir+"gone.csv", "pinned/gone.csv", "0123456789abcdef0123456789abcdef"); lessee.ErrorCode(err) != lessee.ENOTFOUND &&
			lessee.ErrorCode(err) != lessee.ECONFLICT {
			t.Fatalf("copy if-match of a missing object: %v, want not found or a conflict", err)
		}
		if _, err := c.Download(ctx, dir+"gone.csv", "", &bytes.Buffer{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of a missing object: %v, want ErrNotFound", err)
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		mp := *c
		mp.multipartThreshold, mp.partSize = 5<<20, 5<<20 // S3's smallest part
		body := bytes.Repeat([]byte("operation,registration_number\nadd,EL10001\n"), (11<<20)/42)
		path := filepath.Join(t.TempDir(), "big.csv")
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		key := dir + "big æøå+.csv"
		if err := mp.PutFile(ctx, key, path, "text/csv"); err != nil {
			t.Fatalf("multipart put: %v", err)
		}
		var got bytes.Buffer
		obj, err := c.Download(ctx, key, "", &got)
		if err != nil || !bytes.Equal(got.Bytes(), body) || obj.Size != int64(len(body)) {
			t.Fatalf("multipart object: %d bytes (%v), want %d", got.Len(), err, len(body))
		}
	})
}
