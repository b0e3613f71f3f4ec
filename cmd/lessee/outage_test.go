package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/worker"
)

// Sizes of the outage test: one large file that the outages hit in the
// middle, and two small ones uploaded while Redis and PostgreSQL are down.
const (
	outageChunk     = 200
	outageLargeRows = 20000
	outageSmallRows = 4000
)

// outageFile is one change file of the outage test.
type outageFile struct {
	submitter, name, path string
	rows                  int
}

func (f outageFile) key() string { return "inbox/" + f.submitter + "/" + f.name }

// TestOutageRecovery runs `lessee serve` in-process against a PostgreSQL
// cluster, redis-server processes and an S3 endpoint that the test owns,
// and breaks each of them while a 20,000-row file is in progress: Redis is
// killed with SIGKILL and started again, PostgreSQL is crashed (pg_ctl stop
// -m immediate) and started again 2 s later, and the S3 endpoint refuses
// connections from about a second before the file's last chunk, for at
// least 3 s and until every row is applied, so that the receipt upload
// meets the outage. A second file is uploaded while Redis is down and a
// third while PostgreSQL is down. Every file must then finish with every
// row's outcome as the generator intended, a complete receipt in input
// order, one audit entry per applied row, its source archived, and the
// same registry state, audit log and receipt rows as a run of the same
// files without outages; Asynq must still list both queues.
//
// It runs twice: with a Redis that keeps nothing across a restart (the
// queue is lost; the inbox scan must find the files again) and with an
// append-only Redis (the queue survives). The service scans the inbox at
// the default interval, 2 s (LESSEE_OUTAGE_SCAN_MS overrides it);
// LESSEE_OUTAGE_WAIT_SECONDS sets how long files may take to finish after
// the last outage (30 s, 10 s once a file has stalled).
func TestOutageRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test skipped with -short: it starts its own PostgreSQL and Redis and takes about a minute")
	}
	tools, why := findOutageTools()
	if why != "" {
		t.Skip("outage test skipped: " + why)
	}
	begin := time.Now()
	pg := startPostgres(t, tools)

	// One registry; three submitters whose files change disjoint fleets, so
	// each file's intended outcomes hold in whatever order files interleave.
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 7, Enterprises: 20, Vehicles: 4000})
	if err != nil {
		t.Fatal(err)
	}
	subs := independentSubmitters(reg, 3)
	if len(subs) < 3 {
		t.Fatalf("the generated registry has %d fleet owners that act only for themselves, want 3", len(subs))
	}
	files := []outageFile{
		{submitter: subs[0], name: "fleet.csv", rows: outageLargeRows},
		{submitter: subs[1], name: "during-redis-outage.csv", rows: outageSmallRows},
		{submitter: subs[2], name: "during-postgres-outage.csv", rows: outageSmallRows},
	}
	for i := range files {
		f := &files[i]
		f.path = filepath.Join(dir, f.name)
		w, err := os.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := gen.WriteChanges(w, reg, gen.ChangesConfig{Seed: int64(100 + i), Rows: f.rows, Submitter: f.submitter}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range files {
		if st, err := os.Stat(f.path); err == nil && (i == 0) != (st.Size() > defaultServeConfig().SmallFile) {
			t.Fatalf("%s is %d bytes: the test wants the first file in the large queue and the others in the small one", f.name, st.Size())
		}
	}

	// The run without outages: embedded Redis and S3, its own database.
	refURL := pg.createDB("reference")
	importOutageRegistry(t, refURL, regDir)
	cfg := defaultServeConfig()
	cfg.DatabaseURL, cfg.ChunkSize, cfg.ScanInterval = refURL, outageChunk, 100*time.Millisecond
	refStart := time.Now()
	ref, stopRef := launchService(t, cfg)
	refEnv := &outageEnv{t: t, e: ref, db: openDB(t, refURL)}
	for _, f := range files {
		refEnv.upload(f)
	}
	var firstRow, allRows time.Time
	if !poll(2*time.Minute, 20*time.Millisecond, func() bool {
		p, ok := refEnv.job(files[0])
		if ok && firstRow.IsZero() && p.RowsDone > 0 {
			firstRow = time.Now()
		}
		if ok && allRows.IsZero() && p.RowsTotal > 0 && p.RowsDone == p.RowsTotal {
			allRows = time.Now()
		}
		return refEnv.allDone(files)
	}) {
		t.Fatal("run without outages: files not all finished within 2 minutes")
	}
	refDur := time.Since(refStart)
	rate := float64(outageLargeRows) / max(allRows.Sub(firstRow), 100*time.Millisecond).Seconds()
	want := refEnv.collect(files)
	refEnv.check(files, want)
	t.Logf("run without outages: all three files in %s; %s: %d rows applied in %s (%.0f rows/s)",
		refDur.Round(time.Millisecond), files[0].name, outageLargeRows, allRows.Sub(firstRow).Round(time.Millisecond), rate)
	stopRef()
	if t.Failed() {
		t.FailNow()
	}

	for i, tc := range []struct {
		name       string
		appendOnly bool
	}{
		{"RedisWithoutPersistence", false},
		{"RedisAppendOnly", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL := pg.createDB("outage" + strconv.Itoa(i))
			importOutageRegistry(t, dbURL, regDir)
			runOutages(t, pg, startRedis(t, tools, tc.appendOnly), dbURL, files, rate, want)
		})
	}
	t.Logf("whole test %s", time.Since(begin).Round(time.Millisecond))
}

// runOutages is one run with outages, compared with the run without.
func runOutages(t *testing.T, pg *privatePostgres, rds *privateRedis, dbURL string, files []outageFile, rate float64, want outageOutcome) {
	s3 := startS3Endpoint(t, t.TempDir(), "lessee")
	cfg := defaultServeConfig()
	cfg.DatabaseURL, cfg.RedisURL, cfg.S3Endpoint = dbURL, rds.url(0), s3.url()
	cfg.S3AccessKey, cfg.S3SecretKey = defaultAccessKey, defaultSecretKey
	cfg.ChunkSize = outageChunk
	cfg.ScanInterval = time.Duration(envInt(t, "LESSEE_OUTAGE_SCAN_MS", 2000)) * time.Millisecond
	svc, _ := launchService(t, cfg)
	env := &outageEnv{t: t, e: svc, db: openDB(t, dbURL)}
	ropt, err := redis.ParseURL(rds.url(0))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ropt)
	t.Cleanup(func() { rc.Close() })
	env.redis = rc

	big := files[0]
	start := time.Now()
	tl := &timeline{start: start}
	defer func() {
		for _, m := range tl.marks {
			t.Log(m)
		}
	}()
	env.upload(big)
	tl.mark("uploaded %s (%d rows)", big.name, big.rows)

	// reach waits until the large file has at least n rows done. Once
	// the file stalls, the remaining outages are skipped.
	stalled := false
	reach := func(n int, what string) int {
		t.Helper()
		if stalled {
			return -1
		}
		var p progress
		if !poll(20*time.Second, 5*time.Millisecond, func() bool {
			var ok bool
			p, ok = env.job(big)
			return ok && p.RowsDone >= n
		}) {
			stalled = true
			tl.mark("STALLED: %s never reached %d rows done %s (at %d/%d, state %s) within 20 s", big.name, n, what, p.RowsDone, p.RowsTotal, p.State)
			return -1
		}
		return p.RowsDone
	}
	// resumed notes how long after a service came back the large file
	// moved on from the rows done when it went down.
	resumed := func(what string, at int, back time.Time) int {
		t.Helper()
		var p progress
		if poll(20*time.Second, 5*time.Millisecond, func() bool {
			var ok bool
			p, ok = env.job(big)
			return ok && (p.RowsDone > at || p.State == string(lessee.JobCompleted))
		}) {
			tl.mark("%s: %s moved on from %d rows done %s after %s came back", big.name, what, at, time.Since(back).Round(time.Millisecond), what)
			return p.RowsDone
		}
		stalled = true
		tl.mark("STALLED: %s did not move on from %d rows done within 20 s after %s came back (at %d/%d, state %s)",
			big.name, at, what, p.RowsDone, p.RowsTotal, p.State)
		return -1
	}

	// Redis: killed at 10%, mid-chunk; the second file is uploaded while
	// it is down. The worker needs Redis only between tasks, so the file
	// goes on meanwhile.
	after := 0
	if at := reach(big.rows*10/100, "before the Redis restart"); at >= 0 {
		rds.kill()
		tl.mark("redis-server killed at %d rows done", at)
		env.upload(files[1])
		tl.mark("uploaded %s while Redis is down", files[1].name)
		time.Sleep(1500 * time.Millisecond)
		rds.start()
		back := time.Now()
		p, _ := env.job(big)
		tl.mark("redis-server started again (append-only %v); %s at %d rows done", rds.appendOnly, big.name, p.RowsDone)
		after = resumed("Redis", p.RowsDone, back)
	}

	// PostgreSQL: crashed at half way at the earliest, and a few chunks
	// after the file came through the Redis restart; the third file is
	// uploaded while it is down.
	if at := reach(max(big.rows/2, after+2*outageChunk), "before the PostgreSQL restart"); at >= 0 {
		pg.crash()
		tl.mark("PostgreSQL crashed (immediate stop) at %d rows done", at)
		env.upload(files[2])
		tl.mark("uploaded %s while PostgreSQL is down", files[2].name)
		time.Sleep(2 * time.Second)
		pg.start()
		back := time.Now()
		// Measured from here, not from the crash: a chunk committing as
		// PostgreSQL went down is not the file moving on.
		p, _ := env.job(big)
		tl.mark("PostgreSQL started again; %s at %d rows done", big.name, p.RowsDone)
		after = resumed("PostgreSQL", p.RowsDone, back)
	}

	// S3: stopped about a second before the last chunk, and not before the
	// attempt that resumed after PostgreSQL has applied two chunks (so it
	// has the file; a retry that must download it would wait for S3), and
	// kept down for 3 s and until the rows are all applied, so that the
	// receipt upload meets the outage.
	ahead := max(outageChunk, int(rate))
	if at := reach(min(big.rows, max(big.rows-ahead, after+2*outageChunk)), "before the S3 outage"); at >= 0 {
		s3.stop()
		down := time.Now()
		tl.mark("S3 endpoint stopped at %d rows done", at)
		var p progress
		var ended time.Time
		poll(15*time.Second, 10*time.Millisecond, func() bool {
			var ok bool
			if p, ok = env.job(big); ok && p.RowsDone == p.RowsTotal && ended.IsZero() {
				ended = time.Now()
			}
			return time.Since(down) >= 3*time.Second && !ended.IsZero() && time.Since(ended) >= time.Second
		})
		tl.mark("S3 endpoint started again after %s; %s at %d/%d rows, state %s",
			time.Since(down).Round(time.Millisecond), big.name, p.RowsDone, p.RowsTotal, p.State)
		if ended.IsZero() {
			t.Errorf("%s did not apply its last rows while S3 was down for %s: the outage did not meet the receipt upload", big.name, time.Since(down).Round(time.Millisecond))
		}
		s3.start()
	}
	lastOutage := time.Now()

	// Normally every file is done a few seconds after the last outage
	// (retries back off from 1 s). A stalled file gets less time: a lost
	// task that nothing re-enqueues does not come back by waiting.
	wait := 30 * time.Second
	if stalled {
		wait = 10 * time.Second
	}
	wait = time.Duration(envInt(t, "LESSEE_OUTAGE_WAIT_SECONDS", int(wait/time.Second))) * time.Second
	if !poll(wait, 20*time.Millisecond, func() bool { return env.allDone(files) }) {
		tl.mark("files not all finished %s after the last outage", wait)
		env.diagnose(files)
		env.checkQueues()
		t.FailNow()
	}
	tl.mark("all files finished, %s after the last outage", time.Since(lastOutage).Round(time.Millisecond))
	got := env.collect(files)
	env.check(files, got)
	for i := range files {
		compareOutcomes(t, got.files[i], want.files[i])
	}
	compareOutcomes(t, got.registry, want.registry)
	tl.mark("outcomes checked")

	env.checkQueues()

	// What each outage cost, from the service's own log.
	logs := env.e.logs.String()
	tl.mark("log: %s", logSummary(logs))
	if m := regexp.MustCompile(`\b\d{11}\b`).FindString(logs); m != "" {
		t.Errorf("the service log holds an unmasked 11-digit number ending %s", m[9:])
	}
}

// checkQueues checks that Asynq still lists both queues: asynqmon and the
// queue metrics show only the queues registered in Redis.
func (env *outageEnv) checkQueues() {
	env.t.Helper()
	insp := asynq.NewInspector(env.e.svc.redisOpt)
	defer insp.Close()
	qs, err := insp.Queues()
	if err != nil {
		env.t.Errorf("list queues: %v", err)
		return
	}
	slices.Sort(qs)
	if !slices.Contains(qs, worker.QueueLarge) || !slices.Contains(qs, worker.QueueSmall) {
		env.t.Errorf("after the outages Asynq lists the queues %v, want %s and %s: asynqmon and the queue metrics no longer show the others",
			qs, worker.QueueLarge, worker.QueueSmall)
	}
}

// logSummary counts the service's retry-related log lines, transient
// failures by the step that failed (the error's first words).
func logSummary(logs string) string {
	var scans, giveUps int
	steps := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		var m struct{ Msg, Err string }
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m.Msg {
		case "inbox scan failed":
			scans++
		case "giving up after retries":
			giveUps++
		case "transient failure; will retry":
			step, _, _ := strings.Cut(m.Err, ":")
			if f := strings.Fields(step); len(f) > 2 {
				step = strings.Join(f[:2], " ")
			}
			steps[step]++
		}
	}
	keys := slices.Sorted(maps.Keys(steps))
	var b strings.Builder
	fmt.Fprintf(&b, "transient failures retried:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %q×%d", k, steps[k])
	}
	fmt.Fprintf(&b, "; failed inbox scans: %d; given up: %d", scans, giveUps)
	return b.String()
}

// independentSubmitters returns up to n fleet owners with the lessee API
// agreement that are no third party's delegate, largest fleet first: each
// can change only its own vehicles, so their files touch disjoint fleets.
func independentSubmitters(reg gen.Registry, n int) []string {
	delegate := map[string]bool{}
	for _, d := range reg.Delegations {
		delegate[d.Delegate] = true
	}
	fleet := map[string]int{}
	for _, v := range reg.Vehicles {
		fleet[v.Owner]++
	}
	var subs []string
	for i := range reg.Enterprises {
		e := &reg.Enterprises[i]
		if e.FleetOwner && !delegate[e.OrgNr] && fleet[e.OrgNr] > 0 &&
			e.Accepted(lessee.AgreementLesseeAPI, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
			subs = append(subs, e.OrgNr)
		}
	}
	slices.SortStableFunc(subs, func(a, b string) int { return fleet[b] - fleet[a] })
	return subs[:min(n, len(subs))]
}

// importOutageRegistry loads the registry files of dir into dbURL through
// the CLI, as an operator would.
func importOutageRegistry(t *testing.T, dbURL, dir string) {
	t.Helper()
	env := map[string]string{"LESSEE_DATABASE_URL": dbURL}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"registry", "import", dir}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatalf("registry import: %v\n%s", err, out.String())
	}
}

func openDB(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// outageEnv is one running service with direct access to its database.
type outageEnv struct {
	t     *testing.T
	e     *e2e
	db    *sqlx.DB
	redis *redis.Client // nil with the embedded Redis
}

func (env *outageEnv) upload(f outageFile) {
	env.t.Helper()
	if err := env.e.objects.PutFile(context.Background(), f.key(), f.path, "text/csv"); err != nil {
		env.t.Fatal(err)
	}
}

// job returns the job row of a file; ok is false while there is none or
// the database does not answer.
func (env *outageEnv) job(f outageFile) (p progress, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := env.db.GetContext(ctx, &p, `SELECT id, state, rows_total, rows_done, applied, unchanged, rejected FROM jobs WHERE object_key = $1`, f.key())
	return p, err == nil
}

// exists reports whether an object exists; false also while S3 is down.
func (env *outageEnv) exists(key string) bool {
	_, err := env.e.objects.Head(context.Background(), key)
	return err == nil
}

// allDone reports whether every file's summary is published, its job
// completed and its source moved out of the inbox.
func (env *outageEnv) allDone(files []outageFile) bool {
	for _, f := range files {
		p, ok := env.job(f)
		if !ok || p.State != string(lessee.JobCompleted) {
			return false
		}
		if !env.exists("receipts/"+f.submitter+"/"+f.name+".summary.json") || env.exists(f.key()) {
			return false
		}
	}
	return true
}

// outageOutcome is what a run left behind: per file its receipt rows and
// summary, and for the whole registry the lessee periods and audit log.
// Job ids differ between runs (they derive from the object version), so
// each file's is replaced by JOB1, JOB2, ...
type outageOutcome struct {
	files    []outcome
	registry outcome
}

func (env *outageEnv) object(key string) []byte {
	env.t.Helper()
	var buf bytes.Buffer
	if _, err := env.e.objects.Download(context.Background(), key, "", &buf); err != nil {
		env.t.Fatalf("download %s: %v", key, err)
	}
	return buf.Bytes()
}

func (env *outageEnv) collect(files []outageFile) outageOutcome {
	t := env.t
	t.Helper()
	var o outageOutcome
	var ids []string
	norm := func(s string) string {
		for i, id := range ids {
			s = strings.ReplaceAll(s, id, "JOB"+strconv.Itoa(i+1))
		}
		return s
	}
	for _, f := range files {
		p, ok := env.job(f)
		if !ok {
			t.Fatalf("no job for %s", f.key())
		}
		ids = append(ids, p.ID)
	}
	for _, f := range files {
		raw := env.object("receipts/" + f.submitter + "/" + f.name + ".receipt.csv")
		var fo outcome
		fo.receiptRows = receiptRows(t, []byte(norm(string(raw))))
		if err := json.Unmarshal(env.object("receipts/"+f.submitter+"/"+f.name+".summary.json"), &fo.summary); err != nil {
			t.Fatalf("summary of %s: %v", f.name, err)
		}
		o.files = append(o.files, fo)
	}

	reg := outcome{audit: map[string]int{}}
	var periods []struct {
		ID, VIN, LesseeID, LesseeName, Start, End string
	}
	err := env.db.Select(&periods, `SELECT id AS "id", vin AS "vin", lessee_id AS "lesseeid", lessee_name AS "lesseename",
		start_date AS "start", COALESCE(end_date, '') AS "end" FROM lessee_periods ORDER BY vin, start_date, id`)
	if err != nil {
		t.Fatalf("read periods: %v", err)
	}
	for _, pr := range periods {
		reg.periods = append(reg.periods, norm(strings.Join([]string{pr.VIN, pr.ID, pr.LesseeID, pr.LesseeName, pr.Start, pr.End}, "|")))
	}
	rows, err := env.db.Query(`SELECT change_id, vin, operation, before_json, after_json FROM audit_log`)
	if err != nil {
		t.Fatalf("read audit: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f [5]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4]); err != nil {
			t.Fatal(err)
		}
		reg.audit[norm(strings.Join(f[:], "|"))]++
		reg.auditRows++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Get(&reg.results, `SELECT count(*) FROM row_results`); err != nil {
		t.Fatal(err)
	}
	o.registry = reg
	return o
}

// check checks one run on its own: every file completed with one receipt
// row per input row in input order, each with the intended outcome; one
// audit entry per applied row; sources archived.
func (env *outageEnv) check(files []outageFile, o outageOutcome) {
	t := env.t
	t.Helper()
	applied := 0
	for i, f := range files {
		fo := o.files[i]
		if fo.summary["status"] != "completed" || fo.summary["rows"] != float64(f.rows) {
			t.Errorf("%s: summary status %v, rows %v; want completed, %d", f.name, fo.summary["status"], fo.summary["rows"], f.rows)
		}
		if a, ok := fo.summary["applied"].(float64); ok {
			applied += int(a)
		}
		recs, err := csv.NewReader(bytes.NewReader(fo.receiptRows)).ReadAll()
		if err != nil {
			t.Fatalf("%s: parse receipt: %v", f.name, err)
		}
		if len(recs) != f.rows {
			t.Errorf("%s: receipt has %d rows, want %d", f.name, len(recs), f.rows)
		}
		for j, rec := range recs {
			if rec[0] != strconv.Itoa(j+2) || !strings.HasPrefix(rec[1], fmt.Sprintf("R%07d-", j+1)) {
				t.Errorf("%s: receipt line %d is row %s (%s), want row %d: rows missing, doubled or out of order", f.name, j+1, rec[0], rec[1], j+2)
				break
			}
		}
		if n, first := intentMismatches(t, fo.receiptRows); n > 0 {
			t.Errorf("%s: %d rows differ from the generator's intent, first: %s", f.name, n, first)
		}
		if p, ok := env.job(f); !ok || p.RowsDone != f.rows || p.Applied+p.Unchanged+p.Rejected != f.rows {
			t.Errorf("%s: job %+v, want %d rows done and counted", f.name, p, f.rows)
		}
		if !env.exists("archive/" + f.submitter + "/" + f.name) {
			t.Errorf("%s: source not in archive/", f.name)
		}
		if env.exists(f.key()) {
			t.Errorf("%s: source still in the inbox", f.name)
		}
	}
	if o.registry.auditRows != applied {
		t.Errorf("%d audit entries, %d rows applied", o.registry.auditRows, applied)
	}
	if total := files[0].rows + files[1].rows + files[2].rows; o.registry.results != total {
		t.Errorf("%d stored row results, %d input rows", o.registry.results, total)
	}
}

// diagnose reports, for every file that did not finish, where it is: its
// job row, whether the source is still in the inbox, its Asynq task (or
// what is left of it in Redis) and the service's last words about it.
func (env *outageEnv) diagnose(files []outageFile) {
	t := env.t
	t.Helper()
	insp := asynq.NewInspector(env.e.svc.redisOpt)
	defer insp.Close()
	for _, f := range files {
		p, ok := env.job(f)
		if ok && p.State == string(lessee.JobCompleted) && !env.exists(f.key()) {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s did not finish:\n  job: %+v (found %v)\n  source in inbox: %v; summary published: %v\n",
			f.name, p, ok, env.exists(f.key()), env.exists("receipts/"+f.submitter+"/"+f.name+".summary.json"))
		found := false
		for _, q := range []string{worker.QueueSmall, worker.QueueLarge} {
			ti, err := insp.GetTaskInfo(q, p.ID)
			switch {
			case err == nil:
				found = true
				fmt.Fprintf(&b, "  asynq task in %s: state %s, retried %d/%d, last error %q, result %s\n",
					q, ti.State, ti.Retried, ti.MaxRetry, ti.LastErr, ti.Result)
			case !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound):
				found = true
				fmt.Fprintf(&b, "  asynq task in %s unreadable: %v\n", q, err)
			}
			if env.redis != nil {
				key := "asynq:{" + q + "}:t:" + p.ID
				if h, err := env.redis.HGetAll(context.Background(), key).Result(); err == nil && len(h) > 0 {
					fields := make([]string, 0, len(h))
					for k := range h {
						fields = append(fields, k)
					}
					slices.Sort(fields)
					fmt.Fprintf(&b, "  redis key %s has fields %v\n", key, fields)
					if _, ok := h["msg"]; !ok {
						b.WriteString("  => a task hash without a task: Redis lost the task while its handler ran, the handler's progress write\n" +
							"     (ResultWriter, HSET result) created the key again, and the scan's enqueue with the same task id now\n" +
							"     conflicts with it (ErrTaskIDConflict), so nothing runs the file again\n")
					}
				}
			}
		}
		if !found {
			b.WriteString("  no asynq task for the job\n")
		}
		var last []string
		for _, line := range strings.Split(env.e.logs.String(), "\n") {
			if strings.Contains(line, p.ID) && (strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`)) {
				last = append(last, line)
			}
		}
		if len(last) > 5 {
			last = last[len(last)-5:]
		}
		fmt.Fprintf(&b, "  last warnings and errors about it:\n    %s", strings.Join(last, "\n    "))
		t.Error(b.String())
	}
	var asynqErrs []string
	for _, line := range strings.Split(env.e.logs.String(), "\n") {
		if strings.Contains(line, `"queue":`) && strings.Contains(line, `"level":"ERROR"`) {
			asynqErrs = append(asynqErrs, line)
		}
	}
	if len(asynqErrs) > 8 {
		asynqErrs = asynqErrs[len(asynqErrs)-8:]
	}
	t.Logf("last Asynq errors:\n%s", strings.Join(asynqErrs, "\n"))
}
