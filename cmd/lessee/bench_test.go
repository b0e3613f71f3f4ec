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

	"github.com/fleetreg/lessee"
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

// TestBenchSnapshotSmall runs `lessee bench --snapshot`'s path at a fleet
// of 2,000 vehicles (and an export of a fleet of 5,000), on PostgreSQL and
// on embedded SQLite: the change file and the snapshot each through the
// real `lessee serve`, then `lessee export`. It asserts what the runs did,
// not how fast: every receipt line has its intended operation and outcome,
// the counts add up to the generated plan, the exports list every vehicle
// of the fleet with the lessee the snapshot left it, and the table has its
// rows.
func TestBenchSnapshotSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark path skipped with -short")
	}
	dbURL, rURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || rURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: benchmark path on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	bin := buildLessee(t)
	for i, sqlite := range []bool{false, true} {
		name := map[bool]string{false: "PostgreSQL", true: "SQLite"}[sqlite]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const fleet, exportFleet = 2000, 5000
			cfg := bench.Config{
				Bin:         bin,
				DatabaseURL: dbURL,
				SQLite:      sqlite,
				RedisURL:    redisDB(t, rURL, 4+i), // apart from the other bench tests' (+2) and the CLI's default (+3)
				Fleet:       fleet,
				ExportFleet: exportFleet,
				Enterprises: bench.DefaultFleetEnterprises,
				Seed:        7,
				ChunkSize:   500,
				Dir:         t.TempDir(),
			}
			var progress bytes.Buffer
			cfg.Progress = &progress
			rep, err := bench.RunSnapshot(context.Background(), cfg)
			if err != nil {
				t.Fatalf("bench: %v\n%s", err, progress.String())
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Logf("\n%s", out.String())

			plan := rep.Plan
			if rep.FleetVehicles != fleet || rep.RegistryVehicles <= fleet || plan.LeftOut == 0 || plan.Duplicates == 0 ||
				plan.Rows+plan.LeftOut-plan.Duplicates < fleet*9/10 {
				t.Fatalf("generated fleet %d of %d vehicles, plan %+v: not a snapshot of the whole fleet", rep.FleetVehicles, rep.RegistryVehicles, plan)
			}
			for _, op := range []lessee.Operation{lessee.OpKeep, lessee.OpAdd, lessee.OpReplace, lessee.OpRemove} {
				if plan.Operations[op] == 0 {
					t.Errorf("the plan has no %s", op)
				}
			}
			c := rep.Changes
			if c == nil || c.Rows != plan.Rows || c.Applied+c.Unchanged+c.Rejected != plan.Rows || c.Mismatches != 0 ||
				c.Applied == 0 || c.Rejected == 0 {
				t.Errorf("change file: %+v; want %d rows, each with its intended outcome", c, plan.Rows)
			}
			s := rep.Snapshot
			if s == nil {
				t.Fatal("no snapshot run")
			}
			ops := 0
			for _, n := range s.Operations {
				ops += n
			}
			if s.Rows != plan.Rows+plan.LeftOut || s.FileRows != plan.Rows || s.Absent != plan.LeftOut || s.JobRows != s.Rows ||
				s.Applied+s.Unchanged+s.Rejected != s.Rows || s.Rejected != plan.Duplicates || ops != s.Rows-s.Rejected ||
				s.Unchanged != plan.Operations[lessee.OpKeep] || s.Mismatches != 0 || !rep.PlanMatches() {
				t.Errorf("snapshot: %d lines (%d rows, %d absent, job %d), %d/%d/%d, operations %v, %d mismatches (first %s); plan %+v",
					s.Rows, s.FileRows, s.Absent, s.JobRows, s.Applied, s.Unchanged, s.Rejected, s.Operations, s.Mismatches, s.FirstMismatch, plan)
			}
			for _, e := range []*bench.EndToEnd{c, &s.EndToEnd} {
				if e != nil && (e.PeakRSS <= 0 || e.Wall <= 0) {
					t.Errorf("missing measurements: peak RSS %d, wall %s", e.PeakRSS, e.Wall)
				}
			}
			for want, x := range map[int]*bench.ExportRun{fleet: rep.Export, exportFleet: rep.LargeExport} {
				if x == nil || x.Rows != want || x.Mismatches != 0 || x.Leased == 0 || x.Leased == want || x.PeakRSS <= 0 || x.Size == 0 {
					t.Errorf("export of %d vehicles: %+v", want, x)
				}
			}
			if x := rep.Export; x != nil && x.Service <= 0 {
				t.Errorf("the service's own export of the fleet was not timed")
			}
			for _, line := range []string{"change file, same rows", "snapshot", "export of the fleet", "export, 5,000-vehicle fleet",
				"time of a change file of as many rows (goal ≤ 2×", "goals:", rep.Machine.CPU} {
				if !strings.Contains(out.String(), line) {
					t.Errorf("the report lacks %q:\n%s", line, out.String())
				}
			}
		})
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
	t.Run("ErrSnapshotOnly", func(t *testing.T) {
		t.Parallel()
		for _, arg := range []string{"--fleet=10", "--export-fleet=10", "--sqlite"} {
			var out bytes.Buffer
			err := runBench(context.Background(), []string{arg}, func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), "needs --snapshot") {
				t.Errorf("runBench %s = %v, want an error naming --snapshot", arg, err)
			}
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
