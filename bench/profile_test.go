package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
	"github.com/fleetreg/lessee/validate"
	"github.com/fleetreg/lessee/worker"
)

// fileObjects is an object store over local files for the in-process
// profile: the upload is a local file, receipts are discarded.
type fileObjects struct {
	mu   sync.Mutex
	path map[string]string
	put  map[string]int64
}

// Head finds nothing: the profile's upload is never moved.
func (f *fileObjects) Head(context.Context, string) (lessee.Object, error) {
	return lessee.Object{}, s3store.ErrNotFound
}

func (f *fileObjects) Download(_ context.Context, key, _ string, w io.Writer) (lessee.Object, error) {
	fh, err := os.Open(f.path[key])
	if err != nil {
		return lessee.Object{}, s3store.ErrNotFound
	}
	defer fh.Close()
	n, err := io.Copy(w, fh)
	return lessee.Object{Key: key, Size: n}, err
}

func (f *fileObjects) Put(_ context.Context, key string, body io.ReadSeeker, _ int64, _ string) error {
	n, err := io.Copy(io.Discard, body)
	f.mu.Lock()
	f.put[key] = n
	f.mu.Unlock()
	return err
}

func (f *fileObjects) Copy(context.Context, string, string) error { return nil }
func (f *fileObjects) Delete(context.Context, string) error       { return nil }

// CopyIfMatch pins the upload: the copy reads the same local file.
func (f *fileObjects) CopyIfMatch(_ context.Context, src, dst, _ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.path[src]
	if !ok {
		return "", s3store.ErrNotFound
	}
	f.path[dst] = p
	return "pinned", nil
}

// BenchmarkWorkerPath runs the worker handler in process on a generated
// file of LESSEE_BENCH_ROWS rows (default 20,000) against PostgreSQL, for
// `go test -cpuprofile`. It is the real path minus Asynq and HTTP S3.
func BenchmarkWorkerPath(b *testing.B) {
	rows := 20000
	if s := os.Getenv("LESSEE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	dir := b.TempDir()
	reg, err := gen.WriteRegistry(filepath.Join(dir, "registry"), gen.RegistryConfig{Seed: 1, Enterprises: 50, Vehicles: 100000})
	if err != nil {
		b.Fatal(err)
	}
	sub := reg.LargestFleet()
	file := filepath.Join(dir, "fleet.csv")
	var buf bytes.Buffer
	if err := gen.WriteChanges(&buf, reg, gen.ChangesConfig{Seed: 1, Rows: rows, Submitter: sub}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var s *sqlstore.Store
		if os.Getenv("LESSEE_BENCH_SQLITE") != "" {
			s = sqlstoretest.SQLite(b)
			if _, err := s.Import(ctx, filepath.Join(dir, "registry"), sqlstore.ImportOptions{}); err != nil {
				b.Fatal(err)
			}
		} else {
			url := sqlstoretest.PostgresURL(b)
			if err := importRegistry(ctx, url, filepath.Join(dir, "registry")); err != nil {
				b.Fatal(err)
			}
			if s, err = sqlstore.Open(ctx, url); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
		}
		key := "inbox/" + sub + "/fleet" + strconv.Itoa(i) + ".csv"
		objs := &fileObjects{path: map[string]string{key: file}, put: map[string]int64{}}
		chunk := 1000
		if c, err := strconv.Atoi(os.Getenv("LESSEE_BENCH_CHUNK")); err == nil {
			chunk = c
		}
		h := worker.NewHandler(objs, s, worker.Config{ChunkSize: chunk, Validate: validate.Config{}, TempDir: dir},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		b.StartTimer()
		if err := h.Process(ctx, worker.IngestPayload{Upload: lessee.Upload{Bucket: "lessee", Key: key, Version: "v" + strconv.Itoa(i), Size: int64(buf.Len())}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds()*float64(i+1), "rows/s")
	}
}

// BenchmarkSnapshotPath runs the worker handler in process on a generated
// snapshot of a fleet of LESSEE_BENCH_FLEET vehicles (default 20,000)
// against PostgreSQL (SQLite with LESSEE_BENCH_SQLITE), for `go test
// -cpuprofile`: `lessee bench --snapshot`'s path minus Asynq and HTTP S3.
func BenchmarkSnapshotPath(b *testing.B) {
	fleetSize := 20000
	if s := os.Getenv("LESSEE_BENCH_FLEET"); s != "" {
		fleetSize, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	dir := b.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, fleet, err := fleetRegistry(regDir, fleetSize, DefaultFleetEnterprises, 1)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "fleet.csv")
	stats, err := writeSnapshot(file, reg, gen.SnapshotConfig{Seed: 1, FleetOwner: fleet})
	if err != nil {
		b.Fatal(err)
	}
	size, _ := os.Stat(file)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var s *sqlstore.Store
		if os.Getenv("LESSEE_BENCH_SQLITE") != "" {
			s = sqlstoretest.SQLite(b)
			if _, err := s.Import(ctx, regDir, sqlstore.ImportOptions{}); err != nil {
				b.Fatal(err)
			}
		} else {
			url := sqlstoretest.PostgresURL(b)
			if err := importRegistry(ctx, url, regDir); err != nil {
				b.Fatal(err)
			}
			if s, err = sqlstore.Open(ctx, url); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
		}
		key := "snapshot/" + fleet + "/fleet" + strconv.Itoa(i) + ".csv"
		objs := &fileObjects{path: map[string]string{key: file}, put: map[string]int64{}}
		h := worker.NewHandler(objs, s, worker.Config{ChunkSize: 1000, Validate: validate.Config{}, TempDir: dir},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		b.StartTimer()
		if err := h.Process(ctx, worker.IngestPayload{Upload: lessee.Upload{Bucket: "lessee", Key: key, Version: "v" + strconv.Itoa(i), Size: size.Size()}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		jobs, err := s.ListJobs(ctx, 1)
		if err != nil || len(jobs) != 1 || jobs[0].State != lessee.JobCompleted || jobs[0].RowsDone != stats.Rows+stats.LeftOut {
			b.Fatalf("job %+v, %v; want completed with %d rows", jobs, err, stats.Rows+stats.LeftOut)
		}
		b.ReportMetric(float64(stats.Rows)/b.Elapsed().Seconds()*float64(i+1), "rows/s")
	}
}
