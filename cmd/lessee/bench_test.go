package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/bench"
)

// TestBenchSmall runs the benchmark path at 20,000 rows (LESSEE_BENCH_ROWS)
// against real PostgreSQL and Redis, so that it cannot rot: the real
// `lessee serve` as a child process, the CSV and XLSX files end to end with
// the small file midway, and every baseline. It asserts what the run did,
// not how fast: every receipt row has the outcome gen intended, the counts
// add up, and each baseline processed its rows.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark path skipped with -short")
	}
	dbURL, rURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || rURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: benchmark path on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	rows := envInt(t, "LESSEE_BENCH_ROWS", 20000)
	cfg := bench.Config{
		Bin:         buildLessee(t),
		DatabaseURL: dbURL,
		RedisURL:    redisDB(t, rURL, 2), // apart from other packages' tests and the crash tests (+1)
		Rows:        rows,
		Vehicles:    20000,
		Enterprises: 30,
		Seed:        7,
		SmallRows:   10,
		NaiveRows:   300,
		CSV:         true,
		XLSX:        true,
		ChunkSize:   500,
		Dir:         t.TempDir(),
	}
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("\n%s", out.String())

	for _, e := range []*bench.EndToEnd{rep.CSV, rep.XLSX} {
		if e == nil {
			t.Fatal("an end-to-end run is missing from the report")
		}
		t.Run(string(e.Format), func(t *testing.T) {
			if e.Rows != rows || e.Applied+e.Unchanged+e.Rejected != rows {
				t.Errorf("receipt has %d rows (%d applied, %d unchanged, %d rejected), want %d",
					e.Rows, e.Applied, e.Unchanged, e.Rejected, rows)
			}
			if e.Mismatches != 0 {
				t.Errorf("%d receipt rows differ from the intended outcome, first %s", e.Mismatches, e.FirstMismatch)
			}
			// gen's default mix: about 8% unchanged and 15% rejected.
			if e.Applied < rows/2 || e.Unchanged == 0 || e.Rejected == 0 {
				t.Errorf("outcome mix %d/%d/%d is not gen's", e.Applied, e.Unchanged, e.Rejected)
			}
			if e.PeakRSS <= 0 || e.Wall <= 0 || e.SecondPass <= 0 {
				t.Errorf("missing measurements: peak RSS %d, wall %s, second pass %s", e.PeakRSS, e.Wall, e.SecondPass)
			}
		})
	}
	if s := rep.CSV.Small; s == nil || s.Rows != 10 || s.Mismatches != 0 {
		t.Errorf("small file: %+v, want 10 rows with their intended outcomes", s)
	}
	for name, m := range map[string]bench.Measure{"naive": rep.Naive, "floor": rep.Floor, "parse csv": rep.ParseCSV, "parse xlsx": *rep.ParseXLSX} {
		want := rows
		if name == "naive" {
			want = cfg.NaiveRows
		}
		if m.Rows != want || m.Wall <= 0 {
			t.Errorf("%s: %d rows in %s, want %d rows", name, m.Rows, m.Wall, want)
		}
	}
	if !strings.Contains(out.String(), "goals:") || !strings.Contains(out.String(), rep.Machine.CPU) {
		t.Errorf("report lacks the goals or the machine:\n%s", out.String())
	}
}

// redisDB returns rawURL with its database number moved on by n.
func redisDB(t *testing.T, rawURL string, n int) string {
	t.Helper()
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	i := strings.LastIndex(rawURL, "/")
	if i < len("redis://") {
		return strings.TrimSuffix(rawURL, "/") + "/" + strconv.Itoa((opt.DB+n)%16)
	}
	return rawURL[:i+1] + strconv.Itoa((opt.DB+n)%16)
}

func TestBenchFlags(t *testing.T) {
	t.Parallel()
	t.Run("ErrHelp", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		err := runBench(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, &out)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "FLUSHES the") {
			t.Errorf("runBench -h = %v, output %q", err, out.String())
		}
	})
	t.Run("ErrExtraArgument", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		err := runBench(context.Background(), []string{"extra"}, func(string) string { return "" }, &out, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("runBench extra = %v, want flag.ErrHelp", err)
		}
	})
	t.Run("RedisDefault", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{
			"":                            "redis://127.0.0.1:6379/13",
			"redis://127.0.0.1:6379/14":   "redis://127.0.0.1:6379/1",
			"redis://:pw@10.0.0.1:6380/2": "redis://:pw@10.0.0.1:6380/5",
		} {
			got, err := benchRedisURL(in)
			if err != nil || got != want {
				t.Errorf("benchRedisURL(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
}
