package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore"
)

// This file is `lessee bench --snapshot`: a snapshot of one fleet against
// a change file of the same row count, and the fleet's export.

// SnapshotReport is what RunSnapshot measured.
type SnapshotReport struct {
	Machine   Machine
	Database  string // "PostgreSQL 15.20" or "SQLite 3.x (embedded)"
	ChunkSize int
	// Fleet is the fleet owner; FleetVehicles its vehicles, of
	// RegistryVehicles in the registry.
	Fleet                           string
	FleetVehicles, RegistryVehicles int
	// Plan is what the generated snapshot means to do.
	Plan gen.SnapshotStats
	// Changes is the change file of Plan.Rows rows for the fleet, Snapshot
	// the snapshot, each on a registry of its own.
	Changes  *EndToEnd
	Snapshot *SnapshotRun
	// Export is the fleet's export written after the snapshot; LargeExport
	// that of a fleet of Config.ExportFleet vehicles, nil when not asked.
	Export, LargeExport *ExportRun
}

// SnapshotRun is the snapshot through the real path. Its Rows, Applied,
// Unchanged and Rejected count the receipt's lines: the file's rows and
// then one per vehicle the file left out.
type SnapshotRun struct {
	EndToEnd
	FileRows   int                      // data rows of the file
	Absent     int                      // receipt lines of vehicles absent from the file
	Operations map[lessee.Operation]int // derived operations of the lines not rejected
	JobRows    int                      // the job's rows_total
}

// ExportRun is one `lessee export --as ORGNR` of a fleet, a process of its
// own against the same database and S3 endpoint as the service.
type ExportRun struct {
	// Measure: the vehicles listed, and the process from start to exit.
	Measure
	Size    int64 // bytes of fleet.csv
	PeakRSS int64 // the process's peak resident set (rusage maxrss)
	Leased  int   // rows with a lessee
	// Mismatches counts rows whose lessee is not the one the fleet should
	// have, rows out of registration-number order or of another fleet, and
	// vehicles of the fleet missing.
	Mismatches    int
	FirstMismatch string
	// Service is how long the service's own export of the fleet took after
	// the run (its log's duration_ms); 0 when it wrote none.
	Service time.Duration
}

// Defaults of the snapshot bench.
const (
	DefaultFleet            = 100_000
	DefaultFleetEnterprises = 8
)

// RunSnapshot generates a registry whose largest fleet has cfg.Fleet
// vehicles (of cfg.Enterprises enterprises), a snapshot of that fleet and a
// change file for it of the snapshot's row count, then runs (a) the change
// file and (b) the snapshot through a fresh `lessee serve` each, on a fresh
// registry each, and (c) `lessee export` of the fleet after the snapshot.
// With cfg.ExportFleet it also exports a fleet of that many vehicles on a
// registry of its own. Every receipt line is checked against the operation
// and outcome gen intended, and every export line against the lessee the
// vehicle should have.
func RunSnapshot(ctx context.Context, cfg Config) (*SnapshotReport, error) {
	if cfg.Bin == "" {
		return nil, errors.New("bench: no lessee binary to run")
	}
	if cfg.Fleet <= 0 {
		cfg.Fleet = DefaultFleet
	}
	if cfg.Enterprises <= 0 {
		cfg.Enterprises = DefaultFleetEnterprises
	}
	if cfg.Enterprises < 2 {
		return nil, errors.New("bench: a snapshot bench needs at least two enterprises")
	}
	step := stepper(cfg.Progress)
	dir, cleanup, err := workDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	rep := &SnapshotReport{ChunkSize: cfg.ChunkSize}
	pgURL := cfg.DatabaseURL
	if cfg.SQLite {
		pgURL = ""
	}
	if rep.Machine, err = machine(ctx, pgURL); err != nil {
		return nil, err
	}

	step("generating a registry whose largest fleet has %d vehicles", cfg.Fleet)
	regDir := filepath.Join(dir, "registry")
	reg, fleet, err := fleetRegistry(regDir, cfg.Fleet, cfg.Enterprises, cfg.Seed)
	if err != nil {
		return nil, err
	}
	rep.Fleet, rep.FleetVehicles, rep.RegistryVehicles = fleet, cfg.Fleet, len(reg.Vehicles)
	snapPath := filepath.Join(dir, fmt.Sprintf("fleet-%d.csv", cfg.Fleet))
	if rep.Plan, err = writeSnapshot(snapPath, reg, gen.SnapshotConfig{Seed: cfg.Seed, FleetOwner: fleet}); err != nil {
		return nil, err
	}
	changesPath := filepath.Join(dir, fmt.Sprintf("changes-%d.csv", rep.Plan.Rows))
	if err := writeChanges(changesPath, reg, gen.ChangesConfig{Seed: cfg.Seed, Rows: rep.Plan.Rows, Submitter: fleet}); err != nil {
		return nil, err
	}
	step("fleet %s: %d of %d vehicles; snapshot of %d rows (%d left out), change file of as many rows",
		fleet, cfg.Fleet, len(reg.Vehicles), rep.Plan.Rows, rep.Plan.LeftOut)

	step("(a) change file of %d rows", rep.Plan.Rows)
	if rep.Changes, err = runChanges(ctx, cfg, dir, regDir, fleet, changesPath, step, &rep.Database); err != nil {
		return nil, fmt.Errorf("change file: %w", err)
	}
	step("(b) snapshot of %d rows, then (c) the fleet's export", rep.Plan.Rows)
	want := fleetState(reg, fleet)
	if err := applySnapshot(want, snapPath); err != nil {
		return nil, err
	}
	if rep.Snapshot, rep.Export, err = runSnapshot(ctx, cfg, dir, regDir, fleet, snapPath, want, step); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}

	if cfg.ExportFleet > 0 {
		step("generating a registry whose largest fleet has %d vehicles, for its export", cfg.ExportFleet)
		bigDir := filepath.Join(dir, "registry-export")
		// Two enterprises: a fleet owner with every vehicle and a third
		// party, so that the registry is no larger than the fleet.
		big, bigFleet, err := fleetRegistry(bigDir, cfg.ExportFleet, 2, cfg.Seed)
		if err != nil {
			return nil, err
		}
		bigWant := fleetState(big, bigFleet)
		if rep.LargeExport, err = runLargeExport(ctx, cfg, dir, bigDir, bigFleet, bigWant, step); err != nil {
			return nil, fmt.Errorf("export of %d vehicles: %w", cfg.ExportFleet, err)
		}
	}
	step("done")
	return rep, nil
}

// fleetRegistry writes a registry of enterprises enterprises to dir whose
// largest fleet (with the lessee API agreement) has exactly fleet
// vehicles, and returns it and that fleet's owner. Vehicles are generated
// in order, each from the random stream after the previous one, so the
// registry is the shortest prefix of a larger one that holds fleet
// vehicles of that owner.
func fleetRegistry(dir string, fleet, enterprises int, seed int64) (gen.Registry, string, error) {
	n := fleet
	if enterprises > 2 {
		n = 2 * fleet
	}
	for {
		reg, err := gen.NewRegistry(gen.RegistryConfig{Seed: seed, Enterprises: enterprises, Vehicles: n})
		if err != nil {
			return reg, "", fmt.Errorf("bench: %w", err)
		}
		owner := reg.LargestFleet()
		count, last := 0, -1
		for i := range reg.Vehicles {
			if reg.Vehicles[i].Owner == owner {
				if count++; count == fleet {
					last = i
					break
				}
			}
		}
		if last < 0 {
			n += n/2 + (fleet-count)*n/max(count, 1)
			continue
		}
		if last+1 < n {
			reg.Vehicles = reg.Vehicles[:last+1]
			if reg.LargestFleet() != owner {
				return reg, "", fmt.Errorf("bench: no registry of %d enterprises has %d vehicles in its largest fleet", enterprises, fleet)
			}
		}
		if err := reg.Write(dir); err != nil {
			return reg, "", fmt.Errorf("bench: %w", err)
		}
		return reg, owner, nil
	}
}

func writeSnapshot(path string, reg gen.Registry, cfg gen.SnapshotConfig) (gen.SnapshotStats, error) {
	fh, err := os.Create(path)
	if err != nil {
		return gen.SnapshotStats{}, fmt.Errorf("bench: %w", err)
	}
	stats, err := gen.WriteSnapshot(fh, reg, cfg)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return stats, fmt.Errorf("bench: snapshot: %w", err)
	}
	return stats, nil
}

// backend is the registry one service runs on: a fresh PostgreSQL schema,
// or an embedded SQLite file under the service's data directory.
type backend struct {
	storeURL string  // what sqlstore.Open takes
	serveURL string  // serve's and export's --database-url; "" for SQLite under data
	data     string  // serve's --data
	db       *sql.DB // the bench's own connection
	drop     func()
	keep     bool // Config.Keep: close leaves the registry and the data directory
}

func newBackend(ctx context.Context, cfg Config, dir string) (*backend, error) {
	data, err := os.MkdirTemp(dir, "serve-*")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b := &backend{data: data, drop: func() {}, keep: cfg.Keep}
	if cfg.SQLite {
		path := filepath.Join(data, "registry.db")
		b.storeURL = "sqlite:" + path
		b.db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	} else {
		url, drop, serr := NewSchema(ctx, cfg.DatabaseURL)
		if serr != nil {
			_ = os.RemoveAll(data)
			return nil, serr
		}
		b.storeURL, b.serveURL, b.drop = url, url, drop
		b.db, err = sql.Open("pgx", url)
	}
	if err != nil {
		b.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return b, nil
}

// close drops the registry and the data directory; stop the service first.
func (b *backend) close() {
	if b.db != nil {
		_ = b.db.Close() // read only
	}
	if b.keep {
		return
	}
	b.drop()
	_ = os.RemoveAll(b.data)
}

func (b *backend) sqlite() bool { return b.serveURL == "" }

// rebind turns ? placeholders into PostgreSQL's $n.
func (b *backend) rebind(q string) string {
	if b.sqlite() {
		return q
	}
	var out strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			out.WriteString("$" + strconv.Itoa(n))
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// load migrates the registry and imports the registry files of regDir,
// then makes it look like a registry in use: fresh planner statistics,
// and every fleet's export current (else the service would start by
// exporting every fleet the import touched, in the middle of the run).
func (b *backend) load(ctx context.Context, regDir string) error {
	s, err := sqlstore.Open(ctx, b.storeURL)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := s.Import(ctx, regDir, sqlstore.ImportOptions{}); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := b.db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("bench: analyze: %w", err)
	}
	if _, err := b.db.ExecContext(ctx, "UPDATE fleet_exports SET exported_version = version, exported_at = changed_at"); err != nil {
		return fmt.Errorf("bench: mark exports written: %w", err)
	}
	return nil
}

func (b *backend) version(ctx context.Context) (string, error) {
	var v string
	if b.sqlite() {
		if err := b.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		return "SQLite " + v + " (embedded)", nil
	}
	if err := b.db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return "PostgreSQL " + strings.Fields(v)[0], nil
}

func (b *backend) watch(ctx context.Context, key string) (j jobState, ok bool, err error) {
	err = b.db.QueryRowContext(ctx, b.rebind(`SELECT state, rows_total, rows_done FROM jobs WHERE object_key = ?`), key).
		Scan(&j.State, &j.RowsTotal, &j.RowsDone)
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	return j, err == nil, err
}

// exported reports whether the service's export of orgnr's fleet includes
// every change to it.
func (b *backend) exported(ctx context.Context, orgnr string) (bool, error) {
	var version, exported int64
	err := b.db.QueryRowContext(ctx, b.rebind(`SELECT version, exported_version FROM fleet_exports WHERE orgnr = ?`), orgnr).
		Scan(&version, &exported)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return exported >= version, err
}

// serve loads the registry into a fresh backend and starts a service on it.
// close stops the service, then drops the backend.
func serve(ctx context.Context, cfg Config, dir, regDir string, fileSize int64, rows int, step func(string, ...any)) (b *backend, c *child, close func(), err error) {
	if b, err = newBackend(ctx, cfg, dir); err != nil {
		return nil, nil, nil, err
	}
	step("importing the registry")
	if err := b.load(ctx, regDir); err != nil {
		b.close()
		return nil, nil, nil, err
	}
	if err := flushRedis(ctx, cfg.RedisURL); err != nil {
		b.close()
		return nil, nil, nil, err
	}
	if c, err = startServe(ctx, cfg, b.serveURL, b.data, max(fileSize*2, 200<<20), max(2*rows, 2_000_000)); err != nil {
		b.close()
		return nil, nil, nil, err
	}
	return b, c, func() { c.stop(); b.close() }, nil
}

// runUpload uploads the file at path to key and times it to its summary, as
// endToEnd does, reading the child's peak RSS when it is done.
func runUpload(ctx context.Context, b *backend, c *child, key, path string, step func(string, ...any)) (*EndToEnd, jobState, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, jobState{}, err
	}
	r := &EndToEnd{Format: lessee.FormatCSV, Size: st.Size()}
	step("uploading %s (%d bytes)", key, st.Size())
	start := time.Now()
	if err := c.upload(ctx, key, path); err != nil {
		return nil, jobState{}, err
	}
	r.Upload = time.Since(start)
	var passes passClock
	var j jobState
	for {
		if err := ctx.Err(); err != nil {
			return nil, j, err
		}
		var ok bool
		if j, ok, err = b.watch(ctx, key); err != nil {
			return nil, j, err
		}
		passes.observe(j, ok, step)
		if ok && finished(j.State) {
			if j.State != string(lessee.JobCompleted) {
				return nil, j, fmt.Errorf("%s was %s; log %s", key, j.State, c.logPath)
			}
			break
		}
		if err := c.exited(); err != nil {
			return nil, j, fmt.Errorf("lessee serve exited: %v; log %s", err, c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	passes.fill(r, start, end)
	if r.PeakRSS, err = c.peakRSS(); err != nil {
		return nil, j, err
	}
	r.ServiceExports, r.ServiceExportTime, _ = serviceExports(c.logPath, "", start, end)
	return r, j, nil
}

// runChanges is (a): the change file through a fresh service.
func runChanges(ctx context.Context, cfg Config, dir, regDir, fleet, path string, step func(string, ...any), database *string) (*EndToEnd, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	b, c, closeAll, err := serve(ctx, cfg, dir, regDir, st.Size(), 0, step)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	if *database, err = b.version(ctx); err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	r, _, err := runUpload(ctx, b, c, objectkey.InboxKey(fleet, name), path, step)
	if err != nil {
		return nil, err
	}
	step("checking the receipt against the intended outcomes")
	rows, counts, mismatches, first, err := checkReceipt(ctx, c, fleet, name, b.data)
	if err != nil {
		return nil, err
	}
	r.Rows = rows
	r.Applied, r.Unchanged, r.Rejected = counts[0], counts[1], counts[2]
	r.Mismatches, r.FirstMismatch = mismatches, first
	c.stop()
	r.Worker = workerStages(c.logPath)
	return r, nil
}

// runSnapshot is (b) and (c): the snapshot through a fresh service, then,
// once the service has exported the fleet itself, `lessee export`.
func runSnapshot(ctx context.Context, cfg Config, dir, regDir, fleet, path string, want map[string]string, step func(string, ...any)) (*SnapshotRun, *ExportRun, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	b, c, closeAll, err := serve(ctx, cfg, dir, regDir, st.Size(), 0, step)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()
	name := filepath.Base(path)
	key := objectkey.Source(objectkey.Snapshot).Key(fleet, name)
	start := time.Now()
	e, j, err := runUpload(ctx, b, c, key, path, step)
	if err != nil {
		return nil, nil, err
	}
	r := &SnapshotRun{EndToEnd: *e, JobRows: j.RowsTotal}
	step("checking the receipt against the intended operations")
	var buf bytes.Buffer
	if _, err := c.s3.Download(ctx, objectkey.ReceiptCSV(fleet, name), "", &buf); err != nil {
		return nil, nil, fmt.Errorf("download receipt: %w", err)
	}
	chk, err := snapshotIntents(&buf)
	if err != nil {
		return nil, nil, err
	}
	r.Rows, r.FileRows, r.Absent, r.Operations = chk.rows, chk.rows-chk.absent, chk.absent, chk.ops
	r.Applied, r.Unchanged, r.Rejected = chk.counts[0], chk.counts[1], chk.counts[2]
	r.Mismatches, r.FirstMismatch = chk.mismatches, chk.first

	// The service exports the fleet a few seconds after its last change;
	// let it, so that no export of the service runs beside the one timed.
	step("waiting for the service's own export of the fleet")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done, err := b.exported(ctx, fleet)
		if err != nil {
			return nil, nil, err
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the service did not export fleet %s within 3 minutes; log %s", fleet, c.logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, _, service := serviceExports(c.logPath, fleet, start, time.Now())

	step("(c) lessee export --as %s", fleet)
	x, err := exportFleet(ctx, cfg, b, c, fleet, want)
	if err != nil {
		return nil, nil, err
	}
	x.Service = service
	c.stop()
	r.Worker = workerStages(c.logPath)
	return r, x, nil
}

// runLargeExport imports the registry of regDir, whose fleet has every
// vehicle, and exports the fleet.
func runLargeExport(ctx context.Context, cfg Config, dir, regDir, fleet string, want map[string]string, step func(string, ...any)) (*ExportRun, error) {
	b, c, closeAll, err := serve(ctx, cfg, dir, regDir, 0, 0, step)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	step("lessee export --as %s (%d vehicles)", fleet, len(want))
	return exportFleet(ctx, cfg, b, c, fleet, want)
}

// exportFleet runs `lessee export --as fleet` against the service's
// database and S3 endpoint, then checks the export it wrote against want:
// registration number → lessee id ("" for none) of every vehicle of the
// fleet.
func exportFleet(ctx context.Context, cfg Config, b *backend, c *child, fleet string, want map[string]string) (*ExportRun, error) {
	cmd := exec.CommandContext(ctx, cfg.Bin, "export", "--as", fleet,
		"--database-url="+b.serveURL, "--data", b.data, "--s3-endpoint", c.s3Endpoint,
		"--s3-access-key", accessKey, "--s3-secret-key", secretKey, "--bucket", bucket)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lessee export: %w", err)
	}
	peak := watchHWM(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("lessee export: %v: %s", err, stderr.String())
	}
	x := &ExportRun{Measure: Measure{Wall: time.Since(start)}, PeakRSS: peak()}
	f := strings.Fields(stdout.String())
	if len(f) != 3 || f[0] != fleet {
		return nil, fmt.Errorf("lessee export printed %q", stdout.String())
	}
	listed, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("lessee export printed %q", stdout.String())
	}

	fh, err := os.CreateTemp(b.data, "export-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(fh.Name())
	defer func() { _ = fh.Close() }() // downloaded, read back, then removed
	obj, err := c.s3.Download(ctx, objectkey.Export(fleet), "", fh)
	if err != nil {
		return nil, fmt.Errorf("download export: %w", err)
	}
	x.Size = obj.Size
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := x.check(fh, want); err != nil {
		return nil, err
	}
	if listed != x.Rows {
		x.Mismatches++
		if x.FirstMismatch == "" {
			x.FirstMismatch = fmt.Sprintf("lessee export reported %d vehicles, the file lists %d", listed, x.Rows)
		}
	}
	return x, nil
}

// check reads an export and compares it with want, which it empties.
func (x *ExportRun) check(r io.Reader, want map[string]string) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("export header: %w", err)
	}
	if len(header) < 3 || header[0] != "registration_number" || header[2] != "lessee_id" {
		return fmt.Errorf("export header %q", header)
	}
	miss := func(format string, args ...any) {
		if x.Mismatches == 0 {
			x.FirstMismatch = fmt.Sprintf(format, args...)
		}
		x.Mismatches++
	}
	prev := ""
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		x.Rows++
		reg, id := rec[0], rec[2]
		if id != "" {
			x.Leased++
		}
		w, ok := want[reg]
		switch {
		case !ok:
			miss("%s: not a vehicle of the fleet, or listed twice", reg)
		case w != id:
			miss("%s: lessee %q, want %q", reg, id, w)
		case reg <= prev:
			miss("%s listed after %s", reg, prev)
		}
		delete(want, reg)
		prev = reg
	}
	if len(want) > 0 {
		for reg := range want {
			miss("%s: missing (and %d more)", reg, len(want)-1)
			break
		}
		x.Mismatches += len(want) - 1
	}
	return nil
}

// fleetState is the lessee each vehicle of orgnr's fleet has in the
// generated registry today: registration number → lessee id, "" for none.
// Generated periods either have no end or ended before any change file's
// dates.
func fleetState(reg gen.Registry, orgnr string) map[string]string {
	out := map[string]string{}
	for i := range reg.Vehicles {
		v := &reg.Vehicles[i]
		if v.Owner != orgnr {
			continue
		}
		out[v.RegistrationNumber] = ""
		for _, p := range v.Periods {
			if p.End.IsZero() {
				out[v.RegistrationNumber] = p.LesseeID
			}
		}
	}
	return out
}

// applySnapshot turns want into the state the snapshot at path states:
// every vehicle it names (by registration number) has the row's lessee,
// every vehicle it leaves out none. Rows meant as duplicates are skipped.
func applySnapshot(want map[string]string, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() { _ = fh.Close() }() // only read
	cr := csv.NewReader(bufio.NewReaderSize(fh, 1<<20))
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("bench: snapshot header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	named := map[string]string{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("bench: snapshot: %w", err)
		}
		if strings.HasSuffix(rec[col["reference"]], "-duplicate") {
			continue
		}
		named[rec[col["registration_number"]]] = rec[col["lessee_id"]]
	}
	for reg := range want {
		want[reg] = named[reg]
	}
	return nil
}

// snapshotCheck is what a snapshot's receipt says.
type snapshotCheck struct {
	rows       int    // lines
	counts     [3]int // applied, unchanged, rejected
	ops        map[lessee.Operation]int
	absent     int // lines with no row: vehicles absent from the file
	mismatches int
	first      string
}

// snapshotIntents reads a snapshot's receipt and checks every line against
// the operation its reference names ("S0000001-keep", "-duplicate"): keep
// is unchanged; add, replace and remove are applied; a duplicate is
// rejected with DUPLICATE_VEHICLE; a line with no row (a vehicle absent
// from the file) is an applied remove.
func snapshotIntents(r io.Reader) (snapshotCheck, error) {
	chk := snapshotCheck{ops: map[lessee.Operation]int{}}
	br := bufio.NewReaderSize(r, 1<<20)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return chk, fmt.Errorf("receipt header: %w", err)
	}
	if len(header) < 8 || header[0] != "row" || header[1] != "reference" || header[2] != "operation" || header[6] != "status" || header[7] != "code" {
		return chk, fmt.Errorf("receipt header %q", header)
	}
	want := map[string]string{"keep": string(lessee.StatusUnchanged), "add": string(lessee.StatusApplied),
		"replace": string(lessee.StatusApplied), "remove": string(lessee.StatusApplied)}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return chk, nil
		}
		if err != nil {
			return chk, fmt.Errorf("receipt: %w", err)
		}
		chk.rows++
		op, status, code := rec[2], rec[6], rec[7]
		switch status {
		case string(lessee.StatusApplied):
			chk.counts[0]++
		case string(lessee.StatusUnchanged):
			chk.counts[1]++
		default:
			chk.counts[2]++
		}
		if status != string(lessee.StatusRejected) {
			chk.ops[lessee.Operation(op)]++
		}
		var ok bool
		if rec[0] == "" {
			chk.absent++
			ok = op == "remove" && status == string(lessee.StatusApplied)
		} else if _, intent, _ := strings.Cut(rec[1], "-"); intent == "duplicate" {
			ok = code == "DUPLICATE_VEHICLE"
		} else {
			ok = op == intent && status == want[intent]
		}
		if !ok {
			if chk.mismatches == 0 {
				chk.first = strings.Join(rec, ",")
			}
			chk.mismatches++
		}
	}
}

// serviceExports reads the service's JSON log for the fleet exports it
// wrote between from and until (of orgnr; "" for any): how many, their
// total time and the last one's.
func serviceExports(logPath, orgnr string, from, until time.Time) (n int, total, last time.Duration) {
	fh, err := os.Open(logPath)
	if err != nil {
		return 0, 0, 0
	}
	defer func() { _ = fh.Close() }() // only read
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte("fleet export written")) {
			continue
		}
		var line struct {
			Time       time.Time `json:"time"`
			Msg        string    `json:"msg"`
			OrgNr      string    `json:"orgnr"`
			DurationMS float64   `json:"duration_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "fleet export written" {
			continue
		}
		if (orgnr != "" && line.OrgNr != orgnr) || line.Time.Before(from) || line.Time.After(until) {
			continue
		}
		d := time.Duration(line.DurationMS * float64(time.Millisecond))
		n, total, last = n+1, total+d, d
	}
	return n, total, last
}

// watchHWM reads the VmHWM of process pid every few milliseconds until it
// is gone, and returns a function that waits for that and returns the last
// value read: the process's peak resident set, short of what it took in
// its last milliseconds. (The rusage of an exited child will not do: Go
// starts children with vfork, so a child's maxrss counts this process's
// peak from before the exec too.)
func watchHWM(pid int) func() int64 {
	path := fmt.Sprintf("/proc/%d/status", pid)
	done := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			b, err := os.ReadFile(path)
			if err != nil {
				break
			}
			v, err := statusKB(b, "VmHWM:")
			if err != nil {
				break // a zombie: its memory is gone
			}
			peak = max(peak, v)
			time.Sleep(5 * time.Millisecond)
		}
		done <- peak
	}()
	return func() int64 { return <-done }
}
