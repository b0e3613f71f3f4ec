package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/bench"
)

const benchHelp = `Runs the real path end to end against PostgreSQL and Redis with the embedded
S3 endpoint: generates a registry and a change file of --rows rows, starts
'lessee serve' as a child process, uploads the file and times it to its
receipt, sending a small file from another submitter midway. In the same run
it measures the baselines: naive (a transaction and a lookup per row), the
COPY floor and parse only, and the write floor: the rows the run wrote
(lessee periods, per-row results, audit entries, end dates of removed
periods) read back and COPYed into a fresh copy of the schema, every index
and constraint, in one transaction. It prints one table with ratios and the
goals.

With --embedded the files run on the embedded SQLite registry instead, and
the write floor is SQLite's fastest bulk insert (one transaction, prepared
multi-row INSERTs, the same schema); the PostgreSQL baselines are skipped.

With --snapshot it measures reconciling a fleet instead: a registry whose
largest fleet has --fleet vehicles, (a) a change file for that fleet of the
snapshot's row count and (b) a snapshot of the fleet, each through a fresh
'lessee serve' on a fresh registry, and (c) 'lessee export' of the fleet
afterwards (with --export-fleet, also of a fleet of that many vehicles). It
prints the times, the ratio snapshot/change file and the peak RSS of each,
on PostgreSQL or, with --sqlite, on the embedded SQLite registry.

With --api it measures the single-change API instead: a registry of
--vehicles vehicles on PostgreSQL, one 'lessee serve' (no --api-rate limit)
and tokens of its development issuer; closed loops of --api-clients clients
posting changes to different vehicles of the largest fleet for
--api-duration each (changes/s), an open loop at half the highest rate
(p50/p95/p99 latency), and 64 clients hammering 10 vehicles with adds,
removes and idempotent repeats, after which the database is checked against
every answer (lost, doubled, overlapping periods).

Each run uses fresh PostgreSQL schemas (dropped afterwards) and FLUSHES the
Redis database of --redis-url: give it one nothing else uses.

Examples:
  lessee bench --rows 100000 --naive-rows 5000
  lessee bench --snapshot --sqlite
  lessee bench --api --api-duration 10s
`

// runBench implements `lessee bench`.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("bench", "lessee bench [--snapshot | --api] [flags]", benchHelp, stdout)
	fs := cmd.fs
	var cfg bench.Config
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (default $TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis URL whose database is flushed (default: $TEST_REDIS_URL's database + 3, else redis://127.0.0.1:6379/13)")
	fs.IntVar(&cfg.Rows, "rows", 1_000_000, "rows of the change file")
	fs.IntVar(&cfg.Vehicles, "vehicles", 100_000, "vehicles of the generated registry")
	fs.IntVar(&cfg.Enterprises, "enterprises", 50, "enterprises of the generated registry (--snapshot: default 8)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed of the generated data")
	fs.IntVar(&cfg.SmallRows, "small-rows", 10, "rows of the small file sent while the large one runs (0: none)")
	fs.IntVar(&cfg.NaiveRows, "naive-rows", 20_000, "rows the naive baseline processes (0: all; at a few thousand rows/s)")
	fs.BoolVar(&cfg.XLSX, "xlsx", false, "also run the rows as an XLSX file end to end, and the excelize baseline")
	csvRun := fs.Bool("csv", true, "run the CSV file end to end")
	fs.IntVar(&cfg.ChunkSize, "chunk-size", 0, "serve --chunk-size (0: serve's default)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the generated files and the child's data (default: a temporary directory, removed)")
	fs.StringVar(&cfg.Bin, "bin", "", "lessee binary to run serve from (default: this one)")
	snapshot := fs.Bool("snapshot", false, "measure a snapshot of a fleet against a change file of as many rows, and the fleet's export, instead")
	fs.IntVar(&cfg.Fleet, "fleet", bench.DefaultFleet, "--snapshot: vehicles of the fleet")
	fs.IntVar(&cfg.ExportFleet, "export-fleet", 0, "--snapshot: also export a fleet of this many vehicles, e.g. 1000000 (0: none)")
	fs.BoolVar(&cfg.SQLite, "sqlite", false, "--snapshot: run on the embedded SQLite registry instead of PostgreSQL")
	embedded := fs.Bool("embedded", false, "run the files end to end on the embedded SQLite registry, with SQLite's write floor, instead of PostgreSQL")
	apiRun := fs.Bool("api", false, "measure the single-change API (throughput, latency, contention) instead")
	apiClients := fs.String("api-clients", "8,16,32", "--api: concurrent clients of each throughput run, comma-separated")
	apiDuration := fs.Duration("api-duration", bench.DefaultAPIDuration, "--api: length of each throughput run and of the latency run")
	apiServeArgs := fs.String("api-serve-args", "", "--api: extra flags for 'lessee serve', space-separated (e.g. \"--db-max-idle-conns 20\")")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	if err := cmd.checkFlags(positive("rows", cfg.Rows), positive("vehicles", cfg.Vehicles), positive("enterprises", cfg.Enterprises),
		atLeast("small-rows", cfg.SmallRows, 0), atLeast("naive-rows", cfg.NaiveRows, 0), atLeast("chunk-size", cfg.ChunkSize, 0),
		positive("fleet", cfg.Fleet), atLeast("export-fleet", cfg.ExportFleet, 0), positive("api-duration", *apiDuration)); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !*apiRun {
		for _, name := range []string{"api-clients", "api-duration", "api-serve-args"} {
			if given[name] {
				return fmt.Errorf("bench: --%s needs --api", name)
			}
		}
	} else if *snapshot {
		return errors.New("bench: --api and --snapshot are separate runs; give one")
	}
	if *embedded && (*apiRun || *snapshot) {
		return errors.New("bench: --embedded is the file bench's; --snapshot takes --sqlite, --api runs on PostgreSQL only")
	}
	cfg.SQLite = cfg.SQLite || *embedded
	if !*snapshot {
		for _, name := range []string{"fleet", "export-fleet", "sqlite"} {
			if given[name] {
				return fmt.Errorf("bench: --%s needs --snapshot", name)
			}
		}
	} else if !given["enterprises"] {
		cfg.Enterprises = bench.DefaultFleetEnterprises
	}
	cfg.CSV = *csvRun
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = getenv("TEST_DATABASE_URL")
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if cfg.RedisURL == "" {
		r, err := benchRedisURL(getenv("TEST_REDIS_URL"))
		if err != nil {
			return err
		}
		cfg.RedisURL = r
	}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: find this binary: %w", err)
		}
		cfg.Bin = exe
	}
	cfg.Progress = stderr
	if *apiRun {
		acfg := bench.APIConfig{Config: cfg, Duration: *apiDuration, Warmup: bench.DefaultAPIWarmup, ServeArgs: strings.Fields(*apiServeArgs)}
		for f := range strings.SplitSeq(*apiClients, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("bench: --api-clients %q: want positive numbers, comma-separated", *apiClients)
			}
			acfg.Clients = append(acfg.Clients, n)
		}
		rep, err := bench.RunAPI(ctx, acfg)
		if err != nil {
			return err
		}
		rep.Print(stdout)
		return nil
	}
	if *snapshot {
		rep, err := bench.RunSnapshot(ctx, cfg)
		if err != nil {
			return err
		}
		rep.Print(stdout)
		return nil
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	return nil
}

// benchRedisURL is the bench's default Redis database: three after the
// tests' one, so that flushing it disturbs neither the tests nor the
// crash tests (one after), or database 13 of the local Redis.
func benchRedisURL(testURL string) (string, error) {
	if testURL == "" {
		return "redis://127.0.0.1:6379/13", nil
	}
	opt, err := redis.ParseURL(testURL)
	if err != nil {
		return "", fmt.Errorf("TEST_REDIS_URL: %w", err)
	}
	u, err := url.Parse(testURL)
	if err != nil {
		return "", fmt.Errorf("TEST_REDIS_URL: %w", err)
	}
	u.Path = "/" + strconv.Itoa((opt.DB+3)%16)
	return u.String(), nil
}
