package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/gen"
)

// This file is `lessee bench --api`: the single-change API of a real
// `lessee serve` on PostgreSQL, driven over HTTP keep-alive connections
// with tokens of the service's own development issuer.
//
//  1. Throughput: closed loops of Clients concurrent clients, each posting
//     add and remove changes to vehicles of its own (the largest fleet is
//     split between the clients), every change meant to be applied.
//  2. Latency: open loops at half the goal rate (GoalAPIChangesPerSec/2,
//     the goal's "half that rate") and at half the highest rate measured in
//     (1), on a fixed arrival schedule; each latency counts from the
//     request's scheduled time, so that a server falling behind is not
//     hidden by the load generator waiting for it.
//  3. Contention: ContentionClients clients hammering ContentionVehicles
//     vehicles with a known sequence of adds and removes, some with
//     Idempotency-Key (sent by two clients at once and again afterwards).
//
// After the runs the database is checked against every answer: one audit
// entry per applied answer and none without one, a lessee period for every
// applied add and no other, no vehicle with overlapping periods, and each
// idempotency key applied once with the same answer byte for byte.

// Goals of the API benchmark (issue 15), measured in one run.
const (
	GoalAPIChangesPerSec = 1000.0                // changes/s to different vehicles
	GoalAPIP99           = 50 * time.Millisecond // p99 at half the goal rate, and at half the highest rate
)

// Defaults of the API benchmark.
const (
	DefaultAPIDuration        = 10 * time.Second
	DefaultAPIWarmup          = 2 * time.Second
	DefaultContentionClients  = 64
	DefaultContentionVehicles = 10
	DefaultContentionRounds   = 30
)

// DefaultAPIClients are the client counts of the throughput runs.
var DefaultAPIClients = []int{8, 16, 32}

// APIConfig says what RunAPI measures. Of the embedded Config it uses Bin,
// DatabaseURL, RedisURL, Vehicles, Enterprises, Seed, Dir and Progress.
type APIConfig struct {
	Config
	// Clients are the concurrent clients of each throughput run.
	Clients []int
	// Duration is how long each throughput run and the latency run last;
	// Warmup how long the clients run before the first, not counted.
	Duration, Warmup time.Duration
	// ContentionClients post ContentionRounds changes each to
	// ContentionVehicles vehicles.
	ContentionClients, ContentionVehicles, ContentionRounds int
	// ExportWait is how long to wait at most for the service's first
	// export of every fleet before measuring: 0 means a minute, negative
	// not at all.
	ExportWait time.Duration
	// ServeArgs are extra flags for `lessee serve` (e.g.
	// --db-max-idle-conns 20), for experiments.
	ServeArgs []string
}

// APIReport is what RunAPI measured.
type APIReport struct {
	Machine Machine
	// Fleet is the submitter, FleetVehicles its vehicles, of
	// RegistryVehicles in the registry.
	Fleet                           string
	FleetVehicles, RegistryVehicles int
	ServeArgs                       []string
	Throughput                      []APIRun
	// Latency is the open loop at half the highest rate; GoalLatency at
	// half the goal rate (when the highest rate reached it).
	Latency, GoalLatency *APIRun
	Contention           *ContentionRun
	// Check is the database against every answer of the whole run.
	Check APICheck
}

// APIRun is one load run.
type APIRun struct {
	Clients int     // closed loop: concurrent clients; 0 for the open loop
	Rate    float64 // open loop: the scheduled arrivals per second
	// Sent requests; Applied answers 200 "applied"; Unexpected any other
	// answer or transport error (every change of these runs is meant to
	// be applied).
	Sent, Applied, Unexpected int
	FirstUnexpected           string
	Wall                      time.Duration
	P50, P95, P99, Max        time.Duration
	// CPU time per applied change of the serve process, of every
	// PostgreSQL process on the machine, and of the bench itself; and the
	// PostgreSQL sessions opened in the database meanwhile.
	ServeCPU, PostgresCPU, ClientCPU time.Duration
	Sessions                         int64
	// Transactions the API applied changes in, and the changes they
	// carried (the serve's lessee_api_changes_per_transaction).
	Transactions, Grouped int64
	// What else ran meanwhile: the service's fleet exports (from its log)
	// and their time, and autovacuum and autoanalyze runs on the schema.
	Exports     int
	ExportTime  time.Duration
	Autovacuums int64
}

// ChangesPerSec is the run's applied changes per second.
func (r APIRun) ChangesPerSec() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Applied) / r.Wall.Seconds()
}

// ContentionRun is the contention run and its check.
type ContentionRun struct {
	Clients, Vehicles, Rounds int
	Wall                      time.Duration
	// Sent requests (LateRepeats of them after the others, one per
	// idempotency key); answers by kind; Other are neither 200 nor 422 or
	// not an answer at all.
	Sent, LateRepeats                   int
	Applied, Unchanged, Rejected, Other int
	FirstOther                          string
	// Keys are the idempotency keys used; KeysOnce those whose every
	// answer is the same, byte for byte, and exactly one not replayed;
	// Replayed the answers with Idempotent-Replayed.
	Keys, KeysOnce, Replayed int
	// Check is the database against the run's answers, on its vehicles.
	Check APICheck
}

// APICheck compares the database with the answers.
type APICheck struct {
	// Applied answers (not replayed) and audit entries of source api.
	Applied, Audit int
	// Lost: an applied answer without its audit entry (on its vehicle), or
	// an applied add without its lessee period, or fewer periods than
	// imported plus added. Doubled: an audit entry no applied answer names,
	// a change id in two answers that were not replays, or more periods
	// than imported plus added.
	Lost, Doubled int
	// Periods are the lessee periods found, WantPeriods those imported
	// plus one per applied add.
	Periods, WantPeriods int
	// Overlaps counts periods that begin before the previous period of
	// their vehicle ends.
	Overlaps int
	First    string // the first problem found
}

// OK reports whether the check found no problem.
func (c APICheck) OK() bool { return c.Lost == 0 && c.Doubled == 0 && c.Overlaps == 0 }

func (c *APICheck) problem(format string, args ...any) {
	if c.First == "" {
		c.First = fmt.Sprintf(format, args...)
	}
}

// MaxChangesPerSec is the highest rate of the throughput runs.
func (r *APIReport) MaxChangesPerSec() float64 {
	best := 0.0
	for _, t := range r.Throughput {
		best = max(best, t.ChangesPerSec())
	}
	return best
}

// RunAPI generates a registry, starts `lessee serve` on a fresh schema of
// it, runs the throughput, latency and contention runs against its API and
// checks the database against every answer.
func RunAPI(ctx context.Context, cfg APIConfig) (*APIReport, error) {
	if cfg.Bin == "" {
		return nil, errors.New("bench: no lessee binary to run")
	}
	if cfg.Vehicles <= 0 {
		cfg.Vehicles = 100_000
	}
	if cfg.Enterprises <= 0 {
		cfg.Enterprises = 50
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = DefaultAPIClients
	}
	for _, n := range cfg.Clients {
		if n <= 0 {
			return nil, errors.New("bench: client counts must be positive")
		}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultAPIDuration
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	}
	if cfg.ContentionClients <= 0 {
		cfg.ContentionClients = DefaultContentionClients
	}
	if cfg.ContentionVehicles <= 0 {
		cfg.ContentionVehicles = DefaultContentionVehicles
	}
	if cfg.ContentionRounds <= 0 {
		cfg.ContentionRounds = DefaultContentionRounds
	}
	step := stepper(cfg.Progress)
	dir, cleanup, err := workDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	rep := &APIReport{ServeArgs: cfg.ServeArgs}
	if rep.Machine, err = machine(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	step("generating a registry of %d vehicles", cfg.Vehicles)
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: cfg.Seed, Enterprises: cfg.Enterprises, Vehicles: cfg.Vehicles})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b := &apiBench{cfg: cfg, applied: map[string]appliedChange{}}
	rep.Fleet = reg.LargestFleet()
	var fleet []*apiVehicle
	for i := range reg.Vehicles {
		v := &reg.Vehicles[i]
		for _, p := range v.Periods {
			b.lessees = append(b.lessees, p.LesseeID)
		}
		if v.Owner == rep.Fleet {
			fleet = append(fleet, newAPIVehicle(v))
		}
	}
	rep.FleetVehicles, rep.RegistryVehicles = len(fleet), len(reg.Vehicles)
	if len(b.lessees) < 8 || len(fleet) < cfg.ContentionVehicles+slices.Max(cfg.Clients) {
		return nil, fmt.Errorf("bench: the largest fleet has %d vehicles, too few for %d contention vehicles and %d clients; generate more --vehicles",
			len(fleet), cfg.ContentionVehicles, slices.Max(cfg.Clients))
	}
	contended, pool := fleet[:cfg.ContentionVehicles], fleet[cfg.ContentionVehicles:]
	step("fleet %s: %d of %d vehicles", rep.Fleet, len(fleet), len(reg.Vehicles))

	schemaURL, drop, err := NewSchema(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer drop()
	step("importing the registry")
	if err := importRegistry(ctx, schemaURL, regDir); err != nil {
		return nil, err
	}
	if err := flushRedis(ctx, cfg.RedisURL); err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(dir, "serve-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	c, addr, err := startAPIServe(ctx, cfg, schemaURL, data)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	b.serve = c
	if err := b.connect(addr, data, rep.Fleet, cfg); err != nil {
		return nil, err
	}
	db, err := pgx.Connect(ctx, schemaURL)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer db.Close(ctx)
	b.db = db

	// The service exports every fleet of the imported registry once at
	// start; let that finish before measuring.
	if cfg.ExportWait >= 0 {
		step("waiting for the service's first fleet exports")
		if err := b.exportsSettled(ctx, cmp.Or(cfg.ExportWait, time.Minute)); err != nil {
			return nil, err
		}
	}
	if cfg.Warmup > 0 {
		n := slices.Max(cfg.Clients)
		step("warm-up: %d clients for %s", n, cfg.Warmup)
		r := b.closedLoop(ctx, n, cfg.Warmup, pool)
		if r.Unexpected > 0 {
			return nil, fmt.Errorf("warm-up: %d unexpected answers, first %s; log %s", r.Unexpected, r.FirstUnexpected, c.logPath)
		}
	}
	for _, n := range cfg.Clients {
		step("throughput: %d clients for %s", n, cfg.Duration)
		r := b.closedLoop(ctx, n, cfg.Duration, pool)
		step("  %d applied, %.0f changes/s, p99 %s, %d unexpected", r.Applied, r.ChangesPerSec(), dur(r.P99), r.Unexpected)
		rep.Throughput = append(rep.Throughput, r)
	}
	latency := func(rate float64) *APIRun {
		step("latency: open loop at %.0f changes/s for %s", rate, cfg.Duration)
		r := b.openLoop(ctx, rate, cfg.Duration, pool)
		step("  p50 %s, p95 %s, p99 %s, %d unexpected", dur(r.P50), dur(r.P95), dur(r.P99), r.Unexpected)
		return &r
	}
	if rate := GoalAPIChangesPerSec / 2; rep.MaxChangesPerSec()/2 > rate {
		rep.GoalLatency = latency(rate)
	}
	if rate := rep.MaxChangesPerSec() / 2; rate > 0 {
		rep.Latency = latency(rate)
	}
	step("contention: %d clients on %d vehicles, %d changes each", cfg.ContentionClients, len(contended), cfg.ContentionRounds)
	if rep.Contention, err = b.contention(ctx, contended); err != nil {
		return nil, err
	}
	if err := c.exited(); err != nil {
		return nil, fmt.Errorf("lessee serve exited: %v; log %s", err, c.logPath)
	}
	step("checking the database against every answer")
	imported := 0
	for _, v := range reg.Vehicles {
		imported += len(v.Periods)
	}
	b.mu.Lock()
	all, freshTwice := maps.Clone(b.applied), b.freshTwice
	b.mu.Unlock()
	if rep.Check, err = verifyAPI(ctx, db, all, imported, nil); err != nil {
		return nil, err
	}
	rep.Check.Doubled += freshTwice
	step("done")
	return rep, nil
}

// apiVehicle is the bench's model of one vehicle: whether it has an open
// lessee period and the date its next change uses. A change that is
// applied moves the date on by a day, so every change is valid after the
// one before.
type apiVehicle struct {
	mu       sync.Mutex
	reg, vin string
	open     bool
	next     time.Time
	dead     bool // an unexpected answer: its state is no longer known
	periods  int  // imported periods
}

// newAPIVehicle models v as imported: the next change is the day after
// every date the registry gives it.
func newAPIVehicle(v *lessee.Vehicle) *apiVehicle {
	last := v.OwnerSince
	open := false
	for _, p := range v.Periods {
		last = max(last, p.Start, p.End)
		open = open || p.End.IsZero()
	}
	t, err := time.Parse(time.DateOnly, string(last))
	if err != nil {
		t = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	}
	return &apiVehicle{reg: v.RegistrationNumber, vin: v.VIN, open: open, next: t.AddDate(0, 0, 1), periods: len(v.Periods)}
}

// change returns the vehicle's next change: the removal of its open
// period or the add of lessee.
func (v *apiVehicle) change(lesseeID string) (body []byte, add bool) {
	d := v.next.Format(time.DateOnly)
	if v.open {
		return fmt.Appendf(nil, `{"operation":"remove","registration_number":%q,"end_date":%q}`, v.reg, d), false
	}
	return fmt.Appendf(nil, `{"operation":"add","registration_number":%q,"lessee_id":%q,"lessee_name":"Bench Lessee","start_date":%q}`,
		v.reg, lesseeID, d), true
}

// applied moves the model on past an applied change.
func (v *apiVehicle) applied() {
	v.open = !v.open
	v.next = v.next.AddDate(0, 0, 1)
}

// appliedChange is what an applied answer changed.
type appliedChange struct {
	vin string
	add bool
}

// apiBench drives one serve's API.
type apiBench struct {
	cfg     APIConfig
	url     string // POST /api/v1/changes
	auth    string // Authorization header
	client  *http.Client
	serve   *child
	db      *pgx.Conn
	lessees []string // valid lessee ids, from the registry

	mu         sync.Mutex
	applied    map[string]appliedChange // change id of every applied answer not replayed
	freshTwice int                      // change ids named by two answers that were not replays
}

// connect signs a token for orgnr with the serve's development issuer
// (its key in data) and makes the keep-alive client.
func (b *apiBench) connect(addr, data, orgnr string, cfg APIConfig) error {
	dev, err := apiauth.LoadOrCreateDevIssuer(data, apiauth.DefaultDevIssuer, apiauth.DefaultAudience)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	tok, err := dev.Token(orgnr, apiauth.DefaultScope, 24*time.Hour, time.Now())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.auth = "Bearer " + tok
	b.url = "http://" + addr + "/api/v1/changes"
	conns := max(slices.Max(cfg.Clients), cfg.ContentionClients, 64) * 4
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
	tr.DisableCompression = true
	b.client = &http.Client{Transport: tr, Timeout: time.Minute}
	return nil
}

// apiAnswer is one answer of POST /api/v1/changes.
type apiAnswer struct {
	HTTP     int
	Body     []byte
	Status   string `json:"status"`
	Code     string `json:"code"`
	ChangeID string `json:"change_id"`
	Replayed bool
	Err      error
}

func (a apiAnswer) String() string {
	if a.Err != nil {
		return a.Err.Error()
	}
	return fmt.Sprintf("%d %s", a.HTTP, bytes.TrimSpace(a.Body))
}

// fresh reports an applied answer that is not a replay.
func (a apiAnswer) fresh() bool {
	return a.Err == nil && a.HTTP == http.StatusOK && a.Status == string(lessee.StatusApplied) && !a.Replayed
}

// post sends one change, with an idempotency key unless key is "".
func (b *apiBench) post(ctx context.Context, body []byte, key string) apiAnswer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(body))
	if err != nil {
		return apiAnswer{Err: err}
	}
	req.Header.Set("Authorization", b.auth)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return apiAnswer{Err: err}
	}
	defer resp.Body.Close()
	a := apiAnswer{HTTP: resp.StatusCode, Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	if a.Body, a.Err = io.ReadAll(resp.Body); a.Err != nil {
		return a
	}
	if err := json.Unmarshal(a.Body, &a); err != nil {
		a.Err = fmt.Errorf("answer %d %q: %w", a.HTTP, a.Body, err)
	}
	return a
}

// record keeps an applied answer's change id for the database check.
func (b *apiBench) record(a apiAnswer, vin string, add bool) {
	if !a.fresh() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.applied[a.ChangeID]; dup {
		b.freshTwice++
		return
	}
	b.applied[a.ChangeID] = appliedChange{vin: vin, add: add}
}

// lessee returns the i-th lessee id, round the registry's.
func (b *apiBench) lessee(i int) string { return b.lessees[i%len(b.lessees)] }

// send posts v's next change and moves v on when it is applied; it
// reports whether it was, and marks v dead when not.
func (b *apiBench) send(ctx context.Context, v *apiVehicle, i int) (apiAnswer, bool) {
	body, add := v.change(b.lessee(i))
	a := b.post(ctx, body, "")
	b.record(a, v.vin, add)
	if a.fresh() {
		v.applied()
		return a, true
	}
	v.dead = true
	return a, false
}

// runStats gathers a run's answers and latencies.
type runStats struct {
	mu                        sync.Mutex
	sent, applied, unexpected int
	first                     string
	lat                       []time.Duration
}

func (s *runStats) add(a apiAnswer, ok bool, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	s.lat = append(s.lat, took)
	if ok {
		s.applied++
		return
	}
	s.unexpected++
	if s.first == "" {
		s.first = a.String()
	}
}

// usage samples the CPU time of the serve, of PostgreSQL and of the bench,
// and the database's sessions.
type usage struct {
	serve, postgres, self time.Duration
	sessions, autovacuums int64
	transactions, grouped int64
}

func (b *apiBench) usage(ctx context.Context) usage {
	var u usage
	if b.serve != nil && b.serve.cmd != nil {
		u.serve = procCPU(b.serve.cmd.Process.Pid, false)
	}
	u.postgres = postgresCPU()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b.serve != nil && b.serve.metricsURL != "" {
		u.transactions, u.grouped = groupedChanges(ctx, b.serve.metricsURL)
	}
	if b.db != nil {
		_ = b.db.QueryRow(ctx, `SELECT sessions FROM pg_stat_database WHERE datname = current_database()`).Scan(&u.sessions)
		_ = b.db.QueryRow(ctx, `SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables
			WHERE schemaname = current_schema()`).Scan(&u.autovacuums)
	}
	return u
}

// finish fills r from s and what happened since start.
func (b *apiBench) finish(ctx context.Context, r *APIRun, s *runStats, start time.Time, before usage) {
	end := time.Now()
	after := b.usage(ctx)
	r.Sent, r.Applied, r.Unexpected, r.FirstUnexpected, r.Wall = s.sent, s.applied, s.unexpected, s.first, end.Sub(start)
	r.P50, r.P95, r.P99, r.Max = percentiles(s.lat)
	if r.Applied > 0 {
		n := time.Duration(r.Applied)
		r.ServeCPU = (after.serve - before.serve) / n
		r.PostgresCPU = (after.postgres - before.postgres) / n
		r.ClientCPU = (after.self - before.self) / n
	}
	r.Sessions = after.sessions - before.sessions
	r.Transactions, r.Grouped = after.transactions-before.transactions, after.grouped-before.grouped
	r.Autovacuums = after.autovacuums - before.autovacuums
	if b.serve != nil {
		r.Exports, r.ExportTime, _ = serviceExports(b.serve.logPath, "", start, end)
	}
}

// groupedChanges reads from the serve's metrics how many transactions the
// API applied changes in and how many changes they carried; zeros when the
// metrics cannot be read.
func groupedChanges(ctx context.Context, metricsURL string) (transactions, changes int64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0
	}
	f := families["lessee_api_changes_per_transaction"]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0, 0
	}
	h := f.GetMetric()[0].GetHistogram()
	return int64(h.GetSampleCount()), int64(h.GetSampleSum())
}

// exportsSettled waits until every fleet owner's export is up to date
// (none is due, as the service's DueExports sees it), at most for wait.
func (b *apiBench) exportsSettled(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var due int
		if err := b.db.QueryRow(ctx, `SELECT count(*) FROM fleet_exports AS f
			JOIN enterprises AS e ON e.orgnr = f.orgnr AND e.fleet_owner
			WHERE f.version > f.exported_version`).Scan(&due); err != nil {
			return fmt.Errorf("bench: fleet exports: %w", err)
		}
		if due == 0 || time.Now().After(deadline) {
			return nil
		}
		if err := b.serve.exited(); err != nil {
			return fmt.Errorf("lessee serve exited: %v; log %s", err, b.serve.logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// closedLoop runs clients clients for d, each posting the next change of
// its own vehicles (every clients-th of pool) as soon as the last is
// answered.
func (b *apiBench) closedLoop(ctx context.Context, clients int, d time.Duration, pool []*apiVehicle) APIRun {
	r := APIRun{Clients: clients}
	var s runStats
	before := b.usage(ctx)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			var mine []*apiVehicle
			for i := c; i < len(pool); i += clients {
				mine = append(mine, pool[i])
			}
			for k, skipped := 0, 0; skipped < len(mine) && time.Now().Before(deadline); k++ {
				v := mine[k%len(mine)]
				v.mu.Lock()
				if v.dead {
					v.mu.Unlock()
					skipped++
					continue
				}
				skipped = 0
				t0 := time.Now()
				a, ok := b.send(ctx, v, k*clients+c)
				took := time.Since(t0)
				v.mu.Unlock()
				s.add(a, ok, took)
			}
		})
	}
	wg.Wait()
	b.finish(ctx, &r, &s, start, before)
	return r
}

// openLoop posts changes at rate per second for d on a fixed schedule,
// whatever the answers' latency, each to the next vehicle of pool; a
// latency counts from the request's scheduled time.
func (b *apiBench) openLoop(ctx context.Context, rate float64, d time.Duration, pool []*apiVehicle) APIRun {
	r := APIRun{Rate: rate}
	var s runStats
	n := int(rate * d.Seconds())
	before := b.usage(ctx)
	start := time.Now().Add(10 * time.Millisecond)
	inflight := make(chan struct{}, 4096)
	var wg sync.WaitGroup
	for i := range n {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		inflight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inflight }()
			v := pool[i%len(pool)]
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.dead {
				s.add(apiAnswer{Err: errors.New("vehicle skipped after an earlier unexpected answer")}, false, time.Since(at))
				return
			}
			a, ok := b.send(ctx, v, i)
			s.add(a, ok, time.Since(at))
		})
	}
	wg.Wait()
	b.finish(ctx, &r, &s, start, before)
	return r
}

// contention runs ContentionClients clients against vehicles. Clients come
// in twins (c and c+half) that send the same requests at about the same
// time; round j of client c changes vehicle (c mod half + j) mod V: an add
// of one of eight lessees from the vehicle's base date + j days on even
// rounds, a removal on that date on odd ones; every third round carries an
// idempotency key. Each keyed request is sent once more after the others.
// Then the database is checked against the answers.
func (b *apiBench) contention(ctx context.Context, vehicles []*apiVehicle) (*ContentionRun, error) {
	cfg := b.cfg
	run := &ContentionRun{Clients: cfg.ContentionClients, Vehicles: len(vehicles), Rounds: cfg.ContentionRounds}
	half := max(1, cfg.ContentionClients/2)
	type keyed struct {
		body    []byte
		vin     string
		add     bool
		answers []apiAnswer
	}
	var mu sync.Mutex
	keys := map[string]*keyed{}
	applied := map[string]appliedChange{}
	freshTwice := 0
	note := func(a apiAnswer, key string, body []byte, vin string, add bool) {
		b.record(a, vin, add)
		mu.Lock()
		defer mu.Unlock()
		run.Sent++
		switch {
		case a.Err != nil || (a.HTTP != http.StatusOK && a.HTTP != http.StatusUnprocessableEntity):
			run.Other++
			if run.FirstOther == "" {
				run.FirstOther = a.String()
			}
		case a.Status == string(lessee.StatusApplied):
			run.Applied++
		case a.Status == string(lessee.StatusUnchanged):
			run.Unchanged++
		default:
			run.Rejected++
		}
		if a.Replayed {
			run.Replayed++
		}
		if a.fresh() {
			if _, dup := applied[a.ChangeID]; dup {
				freshTwice++
			}
			applied[a.ChangeID] = appliedChange{vin: vin, add: add}
		}
		if key != "" {
			k := keys[key]
			if k == nil {
				k = &keyed{body: body, vin: vin, add: add}
				keys[key] = k
			}
			k.answers = append(k.answers, a)
		}
	}
	lessees := b.lessees[:8]
	start := time.Now()
	var wg sync.WaitGroup
	for c := range cfg.ContentionClients {
		wg.Go(func() {
			t := c % half
			for j := range cfg.ContentionRounds {
				v := vehicles[(t+j)%len(vehicles)]
				d := v.next.AddDate(0, 0, j).Format(time.DateOnly)
				var body []byte
				add := j%2 == 0
				if add {
					body = fmt.Appendf(nil, `{"operation":"add","registration_number":%q,"lessee_id":%q,"lessee_name":"Contention %d","start_date":%q}`,
						v.reg, lessees[t%len(lessees)], t%len(lessees), d)
				} else {
					body = fmt.Appendf(nil, `{"operation":"remove","registration_number":%q,"end_date":%q}`, v.reg, d)
				}
				key := ""
				if j%3 == 0 {
					key = fmt.Sprintf("contention-%d-%d", t, j)
				}
				note(b.post(ctx, body, key), key, body, v.vin, add)
			}
		})
	}
	wg.Wait()
	// The late repeats: every key once more, after the first answers.
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	var next atomic.Int64
	for range cfg.ContentionClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				k := keys[names[i]]
				note(b.post(ctx, k.body, names[i]), names[i], k.body, k.vin, k.add)
			}
		})
	}
	wg.Wait()
	run.Wall = time.Since(start)
	run.LateRepeats = len(names)
	run.Keys = len(keys)
	for _, name := range names {
		k := keys[name]
		fresh, same := 0, true
		for _, a := range k.answers {
			if !a.Replayed {
				fresh++
			}
			same = same && a.Err == nil && a.HTTP == k.answers[0].HTTP && bytes.Equal(a.Body, k.answers[0].Body)
		}
		if fresh == 1 && same {
			run.KeysOnce++
		} else if run.Check.First == "" {
			run.Check.problem("idempotency key %s: %d answers not replayed, the same answer each time: %v", name, fresh, same)
		}
	}

	imported := 0
	vins := make([]string, len(vehicles))
	for i, v := range vehicles {
		vins[i] = v.vin
		imported += v.periods
	}
	first := run.Check.First
	check, err := verifyAPI(ctx, b.db, applied, imported, vins)
	if err != nil {
		return nil, err
	}
	check.Doubled += freshTwice
	if first != "" {
		check.First = first
	}
	run.Check = check
	return run, nil
}

// verifyAPI checks the database against the applied answers: their audit
// entries (source api), on vins or, when vins is nil, everywhere; the
// lessee periods (imported of them imported); and overlaps.
func verifyAPI(ctx context.Context, db *pgx.Conn, applied map[string]appliedChange, imported int, vins []string) (APICheck, error) {
	c := APICheck{Applied: len(applied)}
	filter, args := "", []any{}
	if vins != nil {
		filter, args = " AND vin = ANY($1)", []any{vins}
	}
	rows, err := db.Query(ctx, `SELECT change_id, vin FROM audit_log WHERE source = 'api'`+filter, args...)
	if err != nil {
		return c, fmt.Errorf("bench: audit log: %w", err)
	}
	seen := map[string]int{}
	var id, vin string
	if _, err := pgx.ForEachRow(rows, []any{&id, &vin}, func() error {
		c.Audit++
		seen[id]++
		a, ok := applied[id]
		switch {
		case !ok:
			c.Doubled++
			c.problem("audit entry %s on %s: no applied answer names it", id, vin)
		case a.vin != vin:
			c.Lost++
			c.problem("audit entry %s is on %s, the change was to %s", id, vin, a.vin)
		}
		return nil
	}); err != nil {
		return c, fmt.Errorf("bench: audit log: %w", err)
	}
	for id, n := range seen {
		if n > 1 {
			c.Doubled += n - 1
			c.problem("change id %s has %d audit entries", id, n)
		}
	}
	adds := 0
	for id, a := range applied {
		if a.add {
			adds++
		}
		if seen[id] == 0 {
			c.Lost++
			c.problem("applied answer %s (%s) has no audit entry", id, a.vin)
		}
	}

	where := ""
	if vins != nil {
		where = " WHERE vin = ANY($1)"
	}
	rows, err = db.Query(ctx, `SELECT id FROM lessee_periods`+where, args...)
	if err != nil {
		return c, fmt.Errorf("bench: lessee periods: %w", err)
	}
	periods := map[string]bool{}
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		c.Periods++
		periods[id] = true
		return nil
	}); err != nil {
		return c, fmt.Errorf("bench: lessee periods: %w", err)
	}
	for id, a := range applied {
		if a.add && !periods[id] {
			c.Lost++
			c.problem("applied add %s (%s) has no lessee period", id, a.vin)
		}
	}
	c.WantPeriods = imported + adds
	switch {
	case c.Periods > c.WantPeriods:
		c.Doubled += c.Periods - c.WantPeriods
		c.problem("%d lessee periods, want %d imported + %d added", c.Periods, imported, adds)
	case c.Periods < c.WantPeriods:
		c.Lost += c.WantPeriods - c.Periods
		c.problem("%d lessee periods, want %d imported + %d added", c.Periods, imported, adds)
	}

	var first *string
	if err := db.QueryRow(ctx, `SELECT count(*), min(vin) FROM (
			SELECT vin, start_date, lag(COALESCE(end_date, '9999-12-31')) OVER (PARTITION BY vin ORDER BY start_date, id) AS prev_end
			FROM lessee_periods`+where+`) p
		WHERE start_date < prev_end`, args...).Scan(&c.Overlaps, &first); err != nil {
		return c, fmt.Errorf("bench: overlaps: %w", err)
	}
	if first != nil {
		c.problem("vehicle %s has overlapping lessee periods", *first)
	}
	return c, nil
}

// percentiles returns the 50th, 95th and 99th percentile and the largest
// of lat.
func percentiles(lat []time.Duration) (p50, p95, p99, top time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return at(0.50), at(0.95), at(0.99), s[len(s)-1]
}

// procCPU is the CPU time of process pid (with its reaped children when
// children is set), from /proc/pid/stat.
func procCPU(pid int, children bool) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, cpu := statCPU(b, children)
	return cpu
}

// statCPU reads a /proc/pid/stat line: the command and utime + stime
// (+ cutime + cstime), at 100 ticks a second.
func statCPU(stat []byte, children bool) (string, time.Duration) {
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0
	}
	f := strings.Fields(s[end+1:])
	// After the command: state(0) ppid … utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return s[open+1 : end], 0
	}
	last := 12
	if children {
		last = 14
	}
	var ticks int64
	for i := 11; i <= last; i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return s[open+1 : end], time.Duration(ticks) * 10 * time.Millisecond
}

// postgresCPU sums the CPU time of every process named postgres on this
// machine, with the backends the postmaster has reaped.
func postgresCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if name, cpu := statCPU(b, true); name == "postgres" {
			total += cpu
		}
	}
	return total
}

// apiBanner is the serve banner's API line.
var apiBanner = regexp.MustCompile(`API:\s+http://(\S+)/api/v1/changes`)

// startAPIServe runs `lessee serve` on databaseURL with the API on a port
// of its choosing and no rate limit, waits until it is healthy and returns
// it with the API's address from its banner.
func startAPIServe(ctx context.Context, cfg APIConfig, databaseURL, data string) (*child, string, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	s3Listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	c := &child{logPath: filepath.Join(data, "serve.log"), exit: make(chan error, 1)}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, "", fmt.Errorf("serve log: %w", err)
	}
	outPath := filepath.Join(data, "serve.out")
	outf, err := os.Create(outPath)
	if err != nil {
		_ = logf.Close()
		return nil, "", fmt.Errorf("serve output: %w", err)
	}
	args := append([]string{"serve", "--data", data, "--listen", listen, "--s3-listen", s3Listen,
		"--api-listen", "127.0.0.1:0", "--api-rate", "0",
		"--database-url=" + databaseURL, "--redis-url", cfg.RedisURL, "--log-format", "json"}, cfg.ServeArgs...)
	c.cmd = exec.Command(cfg.Bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = outf, logf
	if err := c.cmd.Start(); err != nil {
		_, _ = logf.Close(), outf.Close()
		return nil, "", fmt.Errorf("start lessee serve: %w", err)
	}
	go func() { c.exit <- c.cmd.Wait(); _, _ = logf.Close(), outf.Close() }()
	c.metricsURL = "http://" + listen + "/metrics"

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	healthy := false
	for {
		if err := ctx.Err(); err != nil {
			c.stop()
			return nil, "", err
		}
		if err := c.exited(); err != nil {
			return nil, "", fmt.Errorf("lessee serve exited during start: %v; log %s", err, c.logPath)
		}
		if !healthy {
			if resp, err := client.Get("http://" + listen + "/healthz"); err == nil {
				resp.Body.Close()
				healthy = resp.StatusCode == http.StatusOK
			}
		}
		if healthy {
			out, _ := os.ReadFile(outPath)
			if m := apiBanner.FindSubmatch(out); m != nil {
				return c, string(m[1]), nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, "", fmt.Errorf("lessee serve not healthy with its API within 60s; log %s", c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
