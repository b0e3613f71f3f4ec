package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
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
	rep, out := runFileBench(t, cfg)

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

// TestBenchAPISmall runs `lessee bench --api`'s path at a tiny size
// against real PostgreSQL and Redis: the real `lessee serve` as a child
// process, one short throughput run, the open loop and the contention run
// of 64 clients on 10 vehicles. It asserts what the runs did, not how fast:
// every answer accounted for, every change of the load runs applied, each
// idempotency key applied once, and the database holding exactly one audit
// entry per applied answer (lost 0, doubled 0) and no overlapping periods.
func TestBenchAPISmall(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark path skipped with -short")
	}
	dbURL, rURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || rURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: API benchmark path on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	const clients, rounds = 64, 6
	cfg := bench.APIConfig{
		Config: bench.Config{
			Bin:         buildLessee(t),
			DatabaseURL: dbURL,
			RedisURL:    redisDB(t, rURL, 6), // apart from the other bench tests' (+2, +4, +5) and the CLI's default (+3)
			Vehicles:    3000,
			Enterprises: 10,
			Seed:        7,
			Dir:         t.TempDir(),
		},
		Clients:            []int{4},
		Duration:           time.Second,
		ContentionClients:  clients,
		ContentionVehicles: 10,
		ContentionRounds:   rounds,
		ExportWait:         -1, // the first fleet exports may run beside the runs
	}
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := bench.RunAPI(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("\n%s", out.String())

	if len(rep.Throughput) != 1 || rep.Latency == nil || rep.Contention == nil {
		t.Fatalf("runs missing: %d throughput runs, latency %v, contention %v", len(rep.Throughput), rep.Latency != nil, rep.Contention != nil)
	}
	applied := 0
	for _, r := range []bench.APIRun{rep.Throughput[0], *rep.Latency} {
		if r.Applied == 0 || r.Sent != r.Applied || r.Unexpected != 0 || r.Wall <= 0 || r.P99 <= 0 {
			t.Errorf("run of %d clients at %.0f/s: %d sent, %d applied, %d unexpected (first %s), p99 %s; want every change applied",
				r.Clients, r.Rate, r.Sent, r.Applied, r.Unexpected, r.FirstUnexpected, r.P99)
		}
		applied += r.Applied
	}
	c := rep.Contention
	if c.Sent != clients*rounds+c.LateRepeats || c.Applied+c.Unchanged+c.Rejected+c.Other != c.Sent || c.Other != 0 {
		t.Errorf("contention: %d sent (%d late repeats), %d applied + %d unchanged + %d rejected + %d other (first %s); want %d + late repeats, every one answered 200 or 422",
			c.Sent, c.LateRepeats, c.Applied, c.Unchanged, c.Rejected, c.Other, c.FirstOther, clients*rounds)
	}
	// Keys on rounds 0 and 3, each sent by two twins and once more after.
	if c.Keys != clients || c.LateRepeats != c.Keys || c.KeysOnce != c.Keys || c.Replayed != 2*c.Keys {
		t.Errorf("contention: %d keys (%d late repeats), %d applied once, %d replayed; want %d keys, each applied once and replayed twice",
			c.Keys, c.LateRepeats, c.KeysOnce, c.Replayed, clients)
	}
	if c.Applied == 0 || c.Rejected == 0 || c.Unchanged == 0 {
		t.Errorf("contention: %d applied, %d unchanged, %d rejected: not contended", c.Applied, c.Unchanged, c.Rejected)
	}
	for name, chk := range map[string]bench.APICheck{"contention": c.Check, "whole run": rep.Check} {
		if !chk.OK() || chk.Lost != 0 || chk.Doubled != 0 || chk.Overlaps != 0 || chk.Applied == 0 || chk.Audit != chk.Applied ||
			chk.Periods != chk.WantPeriods {
			t.Errorf("%s: %+v; want lost 0, doubled 0, no overlaps, one audit entry per applied answer", name, chk)
		}
	}
	if want := applied + c.Check.Applied; rep.Check.Applied != want {
		t.Errorf("whole run: %d applied answers checked, want the runs' %d + contention's %d", rep.Check.Applied, applied, c.Check.Applied)
	}
	for _, line := range []string{"closed loop, 4 clients", "open loop at", "contention, 64 clients on 10 vehicles",
		"lost 0, doubled 0", "goals:", rep.Machine.CPU} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the report lacks %q:\n%s", line, out.String())
		}
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
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
			t.Errorf("runBench extra = %v, want a usage error naming the argument", err)
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
	t.Run("ErrAPIOnly", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--api-clients=4"}, {"--api-duration=1s"}, {"--api-serve-args=--db-max-conns 4"},
			{"--api", "--snapshot"}, {"--api", "--api-clients=4,x"}, {"--api", "--api-clients=0"}} {
			var out bytes.Buffer
			err := runBench(context.Background(), args, func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), "--api") {
				t.Errorf("runBench %v = %v, want an error naming --api", args, err)
			}
		}
	})
	t.Run("ErrEmbeddedFileBenchOnly", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--embedded", "--snapshot"}, {"--embedded", "--api"}} {
			var out bytes.Buffer
			err := runBench(context.Background(), args, func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), "--embedded") {
				t.Errorf("runBench %v = %v, want an error naming --embedded", args, err)
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

// TestBenchWriteFloor runs the file bench small on PostgreSQL and on
// embedded SQLite (--embedded) and checks the write floor against the
// databases themselves, which it keeps: the floor wrote as many periods,
// results, audit entries and end dates as the run's registry shows the
// job wrote (counted there: periods by the job's change ids, end dates by
// the periods on file its audit entries changed), and the floor's registry
// ends exactly as the run's did, row for row. The table shows the floor
// and its goal.
func TestBenchWriteFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark path skipped with -short")
	}
	dbURL, rURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || rURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: benchmark path on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	bin := buildLessee(t)
	const rows = 3000
	for i, sqlite := range []bool{false, true} {
		name := map[bool]string{false: "PostgreSQL", true: "SQLite"}[sqlite]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := bench.Config{
				Bin:         bin,
				DatabaseURL: dbURL,
				RedisURL:    redisDB(t, rURL, 7+i), // apart from the other bench tests' (+2, +4..+6) and the CLI's default (+3)
				Rows:        rows,
				Vehicles:    4000,
				Enterprises: 20,
				Seed:        11,
				NaiveRows:   50,
				CSV:         true,
				ChunkSize:   250,
				SQLite:      sqlite,
				Keep:        true,
				Dir:         t.TempDir(),
			}
			rep, out := runFileBench(t, cfg)
			e, wf := rep.CSV, rep.WriteFloor
			if e == nil || wf == nil {
				t.Fatalf("report without the CSV run (%v) or the write floor (%v)", e != nil, wf != nil)
			}
			if !sqlite {
				t.Cleanup(func() { dropSchemas(t, dbURL, e.DatabaseURL, wf.DatabaseURL) })
			}
			if e.Mismatches != 0 || e.Rows != rows {
				t.Fatalf("end to end: %d rows, %d mismatches (first %s)", e.Rows, e.Mismatches, e.FirstMismatch)
			}
			db, floor := openRunAndFloor(t, sqlite, e.DatabaseURL, wf.DatabaseURL)
			count := func(query string, args ...any) int {
				t.Helper()
				var n int
				if err := db.QueryRow(db.Rebind(query), args...).Scan(&n); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				return n
			}
			beforeID := `CAST(before_json AS json)->>'id'`
			if sqlite {
				beforeID = `json_extract(before_json, '$.id')`
			}
			want := map[string]int{
				"results": count(`SELECT count(*) FROM row_results WHERE job_id = ?`, e.JobID),
				"audit":   count(`SELECT count(*) FROM audit_log WHERE job_id = ?`, e.JobID),
				"periods": count(`SELECT count(*) FROM lessee_periods WHERE id IN (SELECT change_id FROM audit_log WHERE job_id = ?)`, e.JobID),
				// A chunk writes an end date once per period it ends that an
				// earlier chunk (or the import) wrote.
				"end dates": count(`SELECT count(*) FROM (SELECT DISTINCT `+beforeID+` AS pid, r.row_index / 250 AS chunk
					FROM audit_log AS a JOIN row_results AS r ON r.job_id = a.job_id AND r.change_id = a.change_id
					WHERE a.job_id = ? AND a.before_json <> 'null') AS c
					WHERE NOT EXISTS (SELECT 1 FROM row_results AS o WHERE o.job_id = ? AND o.change_id = c.pid AND o.row_index / 250 = c.chunk)`,
					e.JobID, e.JobID),
			}
			got := map[string]int{"results": wf.Results, "audit": wf.Audit, "periods": wf.Periods, "end dates": wf.Updates}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("write floor wrote %d %s, the run's registry has %d", got[k], k, n)
				}
			}
			if want["results"] != rows || want["audit"] != e.Applied || want["periods"] == 0 || want["end dates"] == 0 {
				t.Errorf("the run wrote %v for %d rows, %d applied: not the file's", want, rows, e.Applied)
			}
			// The floor's registry, imported and then written, ends as the
			// run's: the same periods, and the job's results and audit.
			for _, q := range []string{
				`SELECT id, vin, lessee_id, lessee_name, start_date, end_date FROM %slessee_periods`,
				`SELECT job_id, row_index, row_line, reference, status, code, message, change_id FROM %srow_results`,
				`SELECT change_id, job_id, row_line, vin, before_json, after_json, created_at FROM %saudit_log`,
			} {
				diff := `SELECT count(*) FROM (` + fmt.Sprintf(q, "") + ` EXCEPT ` + fmt.Sprintf(q, floor) + `) AS a`
				rdiff := `SELECT count(*) FROM (` + fmt.Sprintf(q, floor) + ` EXCEPT ` + fmt.Sprintf(q, "") + `) AS a`
				if n, m := count(diff), count(rdiff); n != 0 || m != 0 {
					t.Errorf("%s: %d rows only in the run's registry, %d only in the floor's", q, n, m)
				}
			}
			if wf.Rows != rows || wf.Wall <= 0 || len(wf.Steps) < 5 {
				t.Errorf("write floor: %d rows in %s, %d steps", wf.Rows, wf.Wall, len(wf.Steps))
			}
			goalLine := "PostgreSQL CSV end to end"
			if sqlite {
				goalLine = "embedded SQLite CSV end to end"
			}
			for _, line := range []string{"write floor (", goalLine, "its write floor's time (goal ≤ 2×", "time vs write floor"} {
				if !strings.Contains(out.String(), line) {
					t.Errorf("the report lacks %q:\n%s", line, out.String())
				}
			}
			if sqlite && (rep.Naive.Rows != 0 || rep.Floor.Rows != 0 || !strings.Contains(rep.Database, "SQLite")) {
				t.Errorf("--embedded ran PostgreSQL baselines or reports database %q", rep.Database)
			}
		})
	}
}

// openRunAndFloor opens the run's registry with the floor's reachable under
// the returned prefix: the floor's schema on PostgreSQL, its file attached
// on SQLite.
func openRunAndFloor(t *testing.T, sqlite bool, runURL, floorURL string) (*sqlx.DB, string) {
	t.Helper()
	if sqlite {
		db, err := sqlx.Open("sqlite", strings.TrimPrefix(runURL, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1) // ATTACH is per connection
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Exec(`ATTACH DATABASE ? AS f`, strings.TrimPrefix(floorURL, "sqlite:")); err != nil {
			t.Fatal(err)
		}
		return db, "f."
	}
	db, err := sqlx.Open("pgx", runURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	u, err := url.Parse(floorURL)
	if err != nil {
		t.Fatal(err)
	}
	return db, pgx.Identifier{u.Query().Get("search_path")}.Sanitize() + "."
}

// dropSchemas drops the schemas of the kept PostgreSQL URLs.
func dropSchemas(t *testing.T, dbURL string, urls ...string) {
	db, err := sqlx.Open("pgx", dbURL)
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Query().Get("search_path") == "" {
			continue
		}
		if _, err := db.Exec(`DROP SCHEMA ` + pgx.Identifier{u.Query().Get("search_path")}.Sanitize() + ` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	}
}

// runFileBench runs the file benchmark with cfg, failing the test with its
// progress lines on an error, and logs and returns its report and table.
func runFileBench(t *testing.T, cfg bench.Config) (*bench.Report, bytes.Buffer) {
	t.Helper()
	var progress, out bytes.Buffer
	cfg.Progress = &progress
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	rep.Print(&out)
	t.Logf("\n%s", out.String())
	return rep, out
}
