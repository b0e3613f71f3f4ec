package export_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// benchFleetEnv sets the fleet size of BenchmarkExportFleet (default
// 100,000), e.g. LESSEE_BENCH_FLEET=1000000.
const benchFleetEnv = "LESSEE_BENCH_FLEET"

// BenchmarkExportFleet exports one fleet of a generated registry, on SQLite
// and (with TEST_DATABASE_URL) PostgreSQL, into a store that reads and
// discards the object: what it measures is the query, the CSV and the
// spool file. It reports vehicles per second, the most heap in use while
// exports ran (sampled every 10 ms) and the process's peak resident set
// during them (VmHWM, reset after the registry is loaded):
//
//	go test -run '^$' -bench ExportFleet ./export/
//	LESSEE_BENCH_FLEET=1000000 go test -run '^$' -bench ExportFleet -timeout 1h ./export/
func BenchmarkExportFleet(b *testing.B) {
	size := 100_000
	if v := os.Getenv(benchFleetEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", benchFleetEnv, v)
		}
		size = n
	}
	for _, db := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{{"sqlite", sqlstoretest.SQLite}, {"postgres", sqlstoretest.Postgres}} {
		b.Run(fmt.Sprintf("%s/vehicles=%d", db.name, size), func(b *testing.B) {
			store := db.open(b)
			start := time.Now()
			owned := loadBenchFleet(b, store, size)
			b.Logf("registry of %d vehicles (%d in the fleet) loaded in %s", size, owned, time.Since(start).Round(time.Second))
			w := export.New(store, discard{}, export.Config{TempDir: b.TempDir(), Now: func() time.Time { return testNow }})

			runtime.GC()
			debug.FreeOSMemory()
			resetPeakRSS(b)
			peak := sampleHeap()
			rows := 0
			for b.Loop() {
				n, err := w.Write(context.Background(), owner)
				if err != nil {
					b.Fatal(err)
				}
				if n != owned {
					b.Fatalf("exported %d vehicles, want %d", n, owned)
				}
				rows += n
			}
			heap := peak()
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(heap)/(1<<20), "MiB-peak-heap")
			if hwm := peakRSS(b); hwm > 0 {
				b.ReportMetric(float64(hwm)/(1<<20), "MiB-VmHWM")
			}
		})
	}
}

// discard is an object store that reads every object and keeps nothing.
type discard struct{}

func (discard) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	n, err := io.Copy(io.Discard, body)
	if err == nil && n != size {
		err = fmt.Errorf("put %s: read %d of %d bytes", key, n, size)
	}
	return err
}

// benchBatch is how many vehicles one import loads.
const benchBatch = 50_000

// loadBenchFleet loads a registry of size vehicles in batches, and returns
// how many of them the fleet owner owns on the test day. Every tenth
// vehicle, interleaved in registration-number order, belongs to another
// owner; of the fleet's, 60% have a period open on the day, 10% one that
// ended before it, 5% one that begins after it.
func loadBenchFleet(b *testing.B, store *sqlstore.Store, size int) int {
	b.Helper()
	dir := b.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{sqlstore.FileVehicles, sqlstore.FileDelegations} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := store.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	lessees := []string{"15038512363", "02079123660", "24126834558", "05050051287", "31129940134", "912345645", "912345629"}
	vdir := b.TempDir()
	owned := 0
	for from := 0; from < size; from += benchBatch {
		f, err := os.Create(filepath.Join(vdir, sqlstore.FileVehicles))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		w.WriteString("registration_number,vin,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n")
		for i := from; i < min(from+benchBatch, size); i++ {
			// Two letters and five digits, in registration-number order.
			reg := string(rune('A'+i/100_000/26%26)) + string(rune('A'+i/100_000%26)) + fmt.Sprintf("%05d", i%100_000)
			vin := fmt.Sprintf("WVWZZZ1KZ%08d", i)
			orgnr := owner
			if i%10 == 9 {
				orgnr = other
			} else {
				owned++
			}
			lid := lessees[i%len(lessees)]
			switch p := i % 20; {
			case p < 12: // open
				fmt.Fprintf(w, "%s,%s,%s,2020-01-01,%s,2024-01-01,\n", reg, vin, orgnr, lid)
			case p < 14: // ended
				fmt.Fprintf(w, "%s,%s,%s,2020-01-01,%s,2023-01-01,2024-01-01\n", reg, vin, orgnr, lid)
			case p < 15: // future
				fmt.Fprintf(w, "%s,%s,%s,2020-01-01,%s,2027-01-01,\n", reg, vin, orgnr, lid)
			default:
				fmt.Fprintf(w, "%s,%s,%s,2020-01-01,,,\n", reg, vin, orgnr)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Import(ctx, vdir, sqlstore.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return owned
}

// sampleHeap samples HeapInuse every 10 ms until the returned function is
// called, which returns the largest sample.
func sampleHeap() func() uint64 {
	var (
		mu   sync.Mutex
		max  uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		max = maxOf(max, m.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return max
	}
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// resetPeakRSS resets the process's VmHWM to its current resident set
// (Linux), so that loading the registry does not count.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset VmHWM (%v); it includes loading the registry", err)
	}
}

// peakRSS returns VmHWM in bytes, or 0 where /proc has none.
func peakRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Logf("VmHWM: %v", err)
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
