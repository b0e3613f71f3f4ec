package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
)

// Config says what to measure.
type Config struct {
	// Bin is the lessee binary whose `serve` runs as the child process.
	Bin string
	// DatabaseURL is a PostgreSQL URL; every run makes its own schema in
	// that database and drops it afterwards.
	DatabaseURL string
	// RedisURL names a Redis database the bench may flush.
	RedisURL string

	Rows        int   // rows of the large change file
	Vehicles    int   // vehicles of the generated registry
	Enterprises int   // enterprises of the generated registry
	Seed        int64 // gen seed
	SmallRows   int   // rows of the small file sent while the large one runs; 0: none
	// NaiveRows is how many of the rows the naive baseline processes (its
	// rows per second are compared); 0 or more than Rows means all.
	NaiveRows int
	XLSX      bool // also run the same rows as an XLSX file
	CSV       bool // run the CSV file end to end (the baselines always run)
	ChunkSize int  // serve --chunk-size; 0 keeps serve's default

	// Fleet is the vehicles of the fleet RunSnapshot reconciles (default
	// DefaultFleet); ExportFleet, when positive, the vehicles of a second
	// fleet it only exports.
	Fleet, ExportFleet int
	// SQLite runs the end-to-end paths (Run's and RunSnapshot's) on the
	// embedded SQLite registry instead of DatabaseURL; Run then measures
	// SQLite's write floor and none of the PostgreSQL baselines.
	SQLite bool
	// Keep leaves every registry the end-to-end runs and the write floor
	// wrote (PostgreSQL schemas, SQLite files under Dir) in place, their
	// URLs in the report, for a test to inspect; the caller removes them.
	Keep bool

	// Dir holds the generated files and the child's data; "" means a
	// temporary directory, removed afterwards.
	Dir string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// Report is what a Run measured.
type Report struct {
	Machine   Machine
	Database  string // of the end-to-end runs: "PostgreSQL 17.2" or "SQLite 3.x (embedded)"
	Rows      int
	ChunkSize int
	CSV       *EndToEnd // nil when not run
	XLSX      *EndToEnd // nil when not run
	// WriteFloor is the least the database does to store what the first
	// end-to-end run wrote (see WriteFloor); nil when no file ran end to
	// end.
	WriteFloor *WriteFloor
	// Naive and Floor are PostgreSQL's baselines, zero with SQLite.
	Naive     Measure
	Floor     Measure
	ParseCSV  Measure
	ParseXLSX *Measure // nil without XLSX
}

// Measure is one timed pass over rows.
type Measure struct {
	Rows int
	Wall time.Duration
}

// RowsPerSec is the measure's throughput.
func (m Measure) RowsPerSec() float64 {
	if m.Wall <= 0 {
		return 0
	}
	return float64(m.Rows) / m.Wall.Seconds()
}

// EndToEnd is one file through the real path, from the start of its upload
// to its summary.
type EndToEnd struct {
	Format lessee.Format
	Size   int64
	Measure
	// Stages, as seen from outside the worker: upload; first pass (queue,
	// download, scan; until the job knows its row count); second pass
	// (read, validate, apply; until the checkpoint reaches the last row);
	// receipt (until the summary is written and the job finished).
	Upload, FirstPass, SecondPass, Receipt time.Duration
	// Worker holds the worker's own stage timings when its log reports them
	// ("read", "validate", "apply", "receipt"); empty otherwise.
	Worker map[string]time.Duration
	// PeakRSS is the child's VmHWM in bytes when the file was done.
	PeakRSS int64
	// Outcome counts from the receipt and the rows whose outcome differs
	// from the one gen intended.
	Applied, Unchanged, Rejected int
	Mismatches                   int
	FirstMismatch                string
	// Small is the file sent while this one ran, if any.
	Small *Small
	// JobID is the file's job; DatabaseURL, with Config.Keep, the registry
	// it ran on (sqlstore.Open's URL).
	JobID, DatabaseURL string
	// ServiceExports counts the fleet exports the service wrote while the
	// file ran, and their time (RunSnapshot only).
	ServiceExports    int
	ServiceExportTime time.Duration
}

// Small is the small file uploaded while the large one was processed.
type Small struct {
	Rows       int
	AtRowsDone int           // the large file's checkpoint at its upload
	ToReceipt  time.Duration // from upload done to summary written
	Mismatches int
	Overlapped bool // the large file was still being processed when it finished
}

// files are the generated inputs of a run.
type files struct {
	dir, regDir          string
	csv, xlsx, small     string
	submitter, smallFrom string
}

// Run generates the data, runs the end-to-end paths and the baselines, and
// returns what it measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Rows <= 0 {
		return nil, errors.New("bench: rows must be positive")
	}
	if cfg.Bin == "" && (cfg.CSV || cfg.XLSX) {
		return nil, errors.New("bench: no lessee binary to run")
	}
	if cfg.Vehicles <= 0 {
		cfg.Vehicles = 100000
	}
	if cfg.Enterprises <= 0 {
		cfg.Enterprises = 50
	}
	dir, cleanup, err := workDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	step := stepper(cfg.Progress)

	rep := &Report{Rows: cfg.Rows, ChunkSize: cfg.ChunkSize}
	pgURL := cfg.DatabaseURL
	if cfg.SQLite {
		pgURL = ""
	}
	if rep.Machine, err = machine(ctx, pgURL); err != nil {
		return nil, err
	}
	rep.Database = rep.Machine.PostgreSQL
	step("generating a registry of %d vehicles and %d change rows", cfg.Vehicles, cfg.Rows)
	f, err := generate(dir, cfg)
	if err != nil {
		return nil, err
	}

	// The write floor is measured after the first run, on what it wrote:
	// both files write the same rows.
	if cfg.CSV {
		step("end to end: CSV")
		if rep.CSV, rep.WriteFloor, err = endToEnd(ctx, cfg, f, f.csv, lessee.FormatCSV, true, step); err != nil {
			return nil, fmt.Errorf("end to end csv: %w", err)
		}
	}
	if cfg.XLSX {
		step("end to end: XLSX")
		var wf *WriteFloor
		if rep.XLSX, wf, err = endToEnd(ctx, cfg, f, f.xlsx, lessee.FormatXLSX, rep.WriteFloor == nil, step); err != nil {
			return nil, fmt.Errorf("end to end xlsx: %w", err)
		}
		if wf != nil {
			rep.WriteFloor = wf
		}
	}
	if rep.WriteFloor != nil && cfg.SQLite {
		rep.Database = rep.WriteFloor.Database
	}

	step("parse only: encoding/csv")
	if rep.ParseCSV, err = ParseCSV(f.csv); err != nil {
		return nil, err
	}
	if cfg.XLSX {
		step("parse only: excelize streaming read")
		m, err := ParseXLSX(f.xlsx)
		if err != nil {
			return nil, err
		}
		rep.ParseXLSX = &m
	}
	if cfg.SQLite {
		step("done")
		return rep, nil
	}
	step("floor: COPY of the change rows")
	if rep.Floor, err = withSchema(ctx, cfg.DatabaseURL, func(url string) (Measure, error) {
		return CopyFloor(ctx, url, f.csv)
	}); err != nil {
		return nil, err
	}
	naiveRows := cfg.NaiveRows
	if naiveRows <= 0 || naiveRows > cfg.Rows {
		naiveRows = cfg.Rows
	}
	step("naive: one transaction and one lookup per row, %d rows", naiveRows)
	if rep.Naive, err = withSchema(ctx, cfg.DatabaseURL, func(url string) (Measure, error) {
		if err := importRegistry(ctx, url, f.regDir); err != nil {
			return Measure{}, err
		}
		return Naive(ctx, url, f.csv, f.submitter, naiveRows)
	}); err != nil {
		return nil, err
	}
	step("done")
	return rep, nil
}

// generate writes the registry, the large change file (CSV, and XLSX when
// asked) and the small file.
func generate(dir string, cfg Config) (files, error) {
	f := files{dir: dir, regDir: filepath.Join(dir, "registry")}
	reg, err := gen.WriteRegistry(f.regDir, gen.RegistryConfig{Seed: cfg.Seed, Enterprises: cfg.Enterprises, Vehicles: cfg.Vehicles})
	if err != nil {
		return f, fmt.Errorf("bench: %w", err)
	}
	f.submitter = reg.LargestFleet()
	f.csv = filepath.Join(dir, fmt.Sprintf("fleet-%d.csv", cfg.Rows))
	if err := writeChanges(f.csv, reg, gen.ChangesConfig{Seed: cfg.Seed, Rows: cfg.Rows, Submitter: f.submitter}); err != nil {
		return f, err
	}
	if cfg.XLSX {
		f.xlsx = filepath.Join(dir, fmt.Sprintf("fleet-%d.xlsx", cfg.Rows))
		if err := CSVToXLSX(f.csv, f.xlsx); err != nil {
			return f, err
		}
	}
	if cfg.SmallRows > 0 {
		f.smallFrom = smallSubmitter(reg, f.submitter)
		if f.smallFrom == "" {
			return f, errors.New("bench: the registry has no second fleet owner independent of the first for the small file")
		}
		f.small = filepath.Join(dir, "small.csv")
		if err := writeChanges(f.small, reg, gen.ChangesConfig{Seed: cfg.Seed + 1, Rows: cfg.SmallRows, Submitter: f.smallFrom}); err != nil {
			return f, err
		}
	}
	return f, nil
}

// smallSubmitter picks a fleet owner with the lessee API agreement that has
// no delegation either way with the large file's submitter, so that neither
// file can change a vehicle the other one does.
func smallSubmitter(reg gen.Registry, big string) string {
	linked := map[string]bool{big: true}
	for _, d := range reg.Delegations {
		if d.FleetOwner == big || d.Delegate == big {
			linked[d.FleetOwner], linked[d.Delegate] = true, true
		}
	}
	owned := map[string]int{}
	for _, v := range reg.Vehicles {
		owned[v.Owner]++
	}
	var best string
	for i := range reg.Enterprises {
		e := &reg.Enterprises[i]
		if linked[e.OrgNr] || !e.FleetOwner || len(e.Terms) == 0 || owned[e.OrgNr] < 10 {
			continue
		}
		if !slices.ContainsFunc(e.Terms, func(a lessee.Acceptance) bool { return a.Agreement == lessee.AgreementLesseeAPI }) {
			continue
		}
		if best == "" || owned[e.OrgNr] > owned[best] {
			best = e.OrgNr
		}
	}
	return best
}

func writeChanges(path string, reg gen.Registry, cfg gen.ChangesConfig) (err error) {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if cerr := fh.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(fh, 1<<20)
	if err := gen.WriteChanges(bw, reg, cfg); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// workDir returns dir, created if need be, or a temporary folder that
// cleanup removes when dir is "".
func workDir(dir string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "lessee-bench-*")
		if err != nil {
			return "", nil, fmt.Errorf("bench: %w", err)
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	return dir, func() {}, nil
}

// stepper returns a function that writes a timestamped progress line to w
// (nil: nowhere).
func stepper(w io.Writer) func(format string, args ...any) {
	if w == nil {
		w = io.Discard
	}
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// passClock notes when a watched job finished its first pass (its rows
// counted) and its second (every row applied), and turns them into the
// stages of an EndToEnd.
type passClock struct {
	first, second time.Time
}

// observe takes one sighting of the job.
func (p *passClock) observe(j jobState, ok bool, step func(string, ...any)) {
	if ok && p.first.IsZero() && j.RowsTotal > 0 {
		p.first = time.Now()
		step("first pass done: %d rows", j.RowsTotal)
	}
	if ok && p.second.IsZero() && j.RowsTotal > 0 && j.RowsDone == j.RowsTotal {
		p.second = time.Now()
		step("all rows applied; writing the receipt")
	}
}

// fill sets r's wall time and stages for a run from start to end; r.Upload
// must be set.
func (p *passClock) fill(r *EndToEnd, start, end time.Time) {
	r.Wall = end.Sub(start)
	if !p.first.IsZero() {
		r.FirstPass = p.first.Sub(start) - r.Upload
		if !p.second.IsZero() {
			r.SecondPass = p.second.Sub(p.first)
			r.Receipt = end.Sub(p.second)
		}
	}
}
