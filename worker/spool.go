package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/receipt"
)

// upload is where a spooled upload's records are read from: the record
// spool of its first pass when there is one, else the file itself.
type upload struct {
	path     string // the spooled upload; "" when giving up without it
	records  string // its record spool, or ""
	snapshot bool   // read as a snapshot (see ingest.Limits.Snapshot)
}

func (h *Handler) openUpload(ctx context.Context, u upload) (ingest.Table, ingest.Info, error) {
	if u.records != "" {
		return ingest.OpenSpool(ctx, u.records)
	}
	limits := h.cfg.Limits
	limits.Snapshot = u.snapshot
	return ingest.Open(ctx, u.path, limits)
}

var errTooLarge = errors.New("file too large")

// spoolPrefix names the handler's temporary files.
const spoolPrefix = "lessee-"

// RemoveSpoolFiles deletes the handler's temporary files left in dir by a
// process that was killed. Call it at start, before any handler runs.
func RemoveSpoolFiles(dir string) error {
	return removeMatching(dir, spoolPrefix+"upload-*", receipt.TempPrefix+"*")
}

// removeMatching deletes the files in dir that match any of patterns.
func removeMatching(dir string, patterns ...string) error {
	for _, pattern := range patterns {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// download spools the object to f, hashing it and stopping at the size limit.
func (h *Handler) download(ctx context.Context, p lessee.Upload, f *os.File) (int64, string, error) {
	limit := h.cfg.Limits.MaxBytes
	if limit > 0 && p.Size > limit {
		return 0, "", errTooLarge
	}
	hash := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(f, hash), remaining: limit}
	if _, err := h.objects.Download(ctx, p.Key, p.ETag, lw); err != nil {
		if lw.exceeded {
			return 0, "", errTooLarge
		}
		return 0, "", fmt.Errorf("download %s: %w", p.Key, err)
	}
	return lw.written, hex.EncodeToString(hash.Sum(nil)), nil
}

// limitWriter fails once more than remaining bytes are written (no limit
// when remaining starts at 0).
type limitWriter struct {
	w         io.Writer
	remaining int64
	written   int64
	exceeded  bool
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if l.remaining > 0 && l.written+int64(len(b)) > l.remaining {
		l.exceeded = true
		return 0, errTooLarge
	}
	n, err := l.w.Write(b)
	l.written += int64(n)
	return n, err
}
