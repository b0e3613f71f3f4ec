package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
	"github.com/fleetreg/lessee/validate"
)

// TestOverlappingFilesTwoWorkers runs two `lessee serve` processes on one
// PostgreSQL schema and Redis database (the second uses the first one's
// S3 endpoint) and uploads two files that change the same vehicles: one
// from a fleet owner, one from its third party acting for it. Each process
// runs one worker per queue, so each takes one file. The test holds back
// the writing of row results until both files' first chunks are in flight,
// so the two really contend, then checks the registry state and every row's outcome
// against the in-memory decider run over every order of the two files'
// chunks: a chunk is one transaction, so the end must be what some serial
// order of chunks gives. With one chunk per file that is a serial order of
// the files.
func TestOverlappingFilesTwoWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped with -short")
	}
	_, redisURL := realServices(t)
	bin := buildLessee(t)
	for _, tc := range []struct {
		name       string
		rows       int
		chunk      int
		interleave int // how many chunk orders there are
	}{
		{"OneChunkEach", 400, 500, 2},
		{"ThreeChunksEach", 600, 200, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runOverlap(t, bin, sqlstoretest.PostgresURL(t), redisURL, tc.rows, tc.chunk, tc.interleave)
		})
	}
}

func runOverlap(t *testing.T, bin, dbURL, redisURL string, rows, chunk, wantOrders int) {
	ctx := context.Background()
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	// A small fleet, so that the two files change the same vehicles often.
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 11, Enterprises: 6, Vehicles: 120})
	if err != nil {
		t.Fatal(err)
	}
	owner, partner := reg.Enterprises[0].OrgNr, reg.Enterprises[1].OrgNr
	files := []struct {
		token, submitter, name, path string
	}{
		{"A", owner, "owner.csv", filepath.Join(dir, "owner.csv")},
		{"B", partner, "partner.csv", filepath.Join(dir, "partner.csv")},
	}
	for i, f := range files {
		w, err := os.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := gen.WriteChanges(w, reg, gen.ChangesConfig{Seed: int64(20 + i), Rows: rows, Submitter: f.submitter}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Each process names its connections, so that the test can tell the
	// two files' chunks apart: one file has two chunks in flight at once.
	named := func(name string) string {
		if strings.Contains(dbURL, "?") {
			return dbURL + "&application_name=" + name
		}
		return dbURL + "?application_name=" + name
	}
	x := newRig(t, bin, named("overlap-x"), redisURL, chunk)
	y := newRig(t, bin, named("overlap-y"), redisURL, chunk)
	x.args = []string{"--small-workers", "1", "--large-workers", "1"}
	y.args = []string{"--small-workers", "1", "--large-workers", "1", "--s3-endpoint", "http://" + x.s3Listen,
		"--s3-access-key", defaultAccessKey, "--s3-secret-key", defaultSecretKey}
	x.importRegistry(regDir)
	x.start()
	y.start()

	// Hold back every write of per-row results until both files' first
	// chunks wait: each has then loaded (and, with row locks, locked) the
	// state it decides on, or waits for the other's vehicles.
	tx, err := x.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var pid int
	if err := tx.Get(&pid, `SELECT pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE row_results IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		x.upload("inbox/"+f.submitter+"/"+f.name, f.path)
	}
	var lastN int
	if !poll(30*time.Second, 10*time.Millisecond, func() bool {
		// A waiter for a row may wait behind another waiter (one file has
		// two chunks in flight), so count the processes of every backend
		// blocked by this transaction, directly or through others.
		if err := x.db.Get(&lastN, `WITH RECURSIVE blocked(pid) AS (
				SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
				UNION SELECT a.pid FROM pg_stat_activity AS a JOIN blocked AS b ON b.pid = ANY(pg_blocking_pids(a.pid)))
			SELECT count(DISTINCT a.application_name) FROM pg_stat_activity AS a
			WHERE a.application_name LIKE 'overlap-%' AND a.pid IN (SELECT pid FROM blocked)`, pid); err != nil {
			t.Fatal(err)
		}
		return lastN >= 2
	}) {
		var seen []string
		_ = x.db.Select(&seen, `SELECT pid::text || ' ' || application_name || ' ' || state || ' ' || coalesce(wait_event_type, '') || ' ' || left(query, 60) || ' blocked by ' || pg_blocking_pids(pid)::text
			FROM pg_stat_activity WHERE datname = current_database()`)
		t.Fatalf("the two files' first chunks were not both in flight within 30 s (%d processes waiting); backends:\n%s", lastN, strings.Join(seen, "\n"))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	for _, f := range files {
		key := "receipts/" + f.submitter + "/" + f.name + ".summary.json"
		if !poll(60*time.Second, 20*time.Millisecond, func() bool { return x.object(key) != nil }) {
			t.Fatalf("no summary for %s within 60 s", f.name)
		}
	}
	x.stop()
	y.stop()
	for _, r := range []*rig{x, y} {
		if b, _ := os.ReadFile(r.logPath); !strings.Contains(string(b), `"msg":"processing file"`) {
			t.Errorf("process %s processed no file; want one file each", r.data)
		}
	}

	// What the two jobs did, with job ids replaced by the file tokens.
	var jobs []struct {
		ID             string `db:"id"`
		Key            string `db:"object_key"`
		ProcessingDate string `db:"processing_date"`
	}
	if err := x.db.Select(&jobs, `SELECT id, object_key, processing_date FROM jobs`); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	date := map[string]lessee.Date{}
	for _, j := range jobs {
		for _, f := range files {
			if j.Key == "inbox/"+f.submitter+"/"+f.name {
				tokens[j.ID] = f.token
				date[f.token] = lessee.Date(j.ProcessingDate)
			}
		}
	}
	if len(tokens) != 2 {
		t.Fatalf("jobs = %+v, want one per file", jobs)
	}
	norm := func(s string) string {
		for id, tok := range tokens {
			s = strings.ReplaceAll(s, id, tok)
		}
		return s
	}
	var gotPeriods []string
	var prows []struct {
		ID, VIN, LesseeID, LesseeName, Start, End string
	}
	if err := x.db.Select(&prows, `SELECT id AS "id", vin AS "vin", lessee_id AS "lesseeid", lessee_name AS "lesseename",
		start_date AS "start", COALESCE(end_date, '') AS "end" FROM lessee_periods`); err != nil {
		t.Fatal(err)
	}
	for _, p := range prows {
		gotPeriods = append(gotPeriods, norm(strings.Join([]string{p.VIN, p.ID, p.LesseeID, p.LesseeName, p.Start, p.End}, "|")))
	}
	slices.Sort(gotPeriods)
	gotResults := map[string][]string{}
	var rrows []struct {
		JobID    string `db:"job_id"`
		Status   string `db:"status"`
		Code     string `db:"code"`
		ChangeID string `db:"change_id"`
	}
	if err := x.db.Select(&rrows, `SELECT job_id, status, code, change_id FROM row_results ORDER BY job_id, row_index`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rrows {
		tok := tokens[r.JobID]
		gotResults[tok] = append(gotResults[tok], r.Status+"|"+r.Code+"|"+norm(r.ChangeID))
	}

	// Every order of the chunks, decided in memory.
	chunks := map[string][][]lessee.Row{}
	jobsOf := map[string]validate.Job{}
	for _, f := range files {
		vj := validate.Job{ID: f.token, Submitter: f.submitter, ProcessingDate: date[f.token], Now: time.Now()}
		jobsOf[f.token] = vj
		chunks[f.token] = parseChunks(t, f.path, vj, chunk)
	}
	orders := interleavings(len(chunks["A"]), len(chunks["B"]))
	if len(orders) != wantOrders {
		t.Fatalf("%d chunk orders, want %d", len(orders), wantOrders)
	}
	matched := ""
	distinct := map[string]bool{}
	for _, order := range orders {
		st := registryState(reg)
		results := map[string][]string{}
		next := map[string]int{}
		for _, tok := range order {
			rows := chunks[tok][next[tok]]
			next[tok]++
			for _, o := range validate.Decide(validate.Config{}, jobsOf[tok], st, rows).Outcomes {
				results[tok] = append(results[tok], string(o.Status)+"|"+string(o.Code)+"|"+o.ChangeID)
			}
		}
		periods := statePeriods(st)
		distinct[strings.Join(periods, "\n")] = true
		if slices.Equal(periods, gotPeriods) && slices.Equal(results["A"], gotResults["A"]) && slices.Equal(results["B"], gotResults["B"]) {
			matched = strings.Join(order, "")
			break
		}
	}
	if matched == "" {
		t.Errorf("the registry and row outcomes match none of the %d chunk orders (%d distinct end states)", len(orders), len(distinct))
	} else {
		t.Logf("end state and outcomes match the chunk order %s (of %d orders)", matched, len(orders))
	}
}

// parseChunks reads a change file into chunks of parsed rows, as the
// worker does.
func parseChunks(t *testing.T, path string, job validate.Job, size int) [][]lessee.Row {
	t.Helper()
	table, _, err := ingest.Open(context.Background(), path, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	var out [][]lessee.Row
	var cur []lessee.Row
	for {
		raw, err := table.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cur = append(cur, validate.ParseRow(validate.Config{}, job, raw))
		if len(cur) == size {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// interleavings returns every order of a chunks of "A" and b of "B" that
// keeps each file's chunks in order.
func interleavings(a, b int) [][]string {
	if a == 0 && b == 0 {
		return [][]string{nil}
	}
	var out [][]string
	if a > 0 {
		for _, rest := range interleavings(a-1, b) {
			out = append(out, append([]string{"A"}, rest...))
		}
	}
	if b > 0 {
		for _, rest := range interleavings(a, b-1) {
			out = append(out, append([]string{"B"}, rest...))
		}
	}
	return out
}

// registryState builds the decider's state from a registry, as an import
// of it stores it.
func registryState(reg gen.Registry) *lessee.State {
	st := lessee.NewState()
	for i := range reg.Enterprises {
		e := reg.Enterprises[i]
		st.Enterprises[e.OrgNr] = &e
	}
	for _, d := range reg.Delegations {
		k := [2]string{d.FleetOwner, d.Delegate}
		st.Delegations[k] = append(st.Delegations[k], d)
	}
	for _, v := range reg.Vehicles {
		v.Periods = slices.Clone(v.Periods)
		st.Vehicles[v.VIN] = &v
		st.ByReg[v.RegistrationNumber] = v.VIN
	}
	return st
}

// statePeriods lists a state's lessee periods as collect does, sorted.
func statePeriods(st *lessee.State) []string {
	var out []string
	for _, v := range st.Vehicles {
		for _, p := range v.Periods {
			out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%s", v.VIN, p.ID, p.LesseeID, p.LesseeName, p.Start, p.End))
		}
	}
	slices.Sort(out)
	return out
}
