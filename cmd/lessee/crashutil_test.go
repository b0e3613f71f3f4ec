package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
	"github.com/fleetreg/lessee/worker"
)

// This file holds the helpers of the tests that run the real `lessee`
// binary as child processes against PostgreSQL and Redis, kill it and
// compare what it left behind.

// realServices returns the PostgreSQL and Redis URLs of the environment,
// skipping the test, visibly, when either is missing. The Redis URL names
// the database after TEST_REDIS_URL's: these tests flush it, and a Redis
// database shared with tests of other packages running at the same time
// would let one package's workers take the other's tasks. It is flushed
// here, before the test starts anything.
func realServices(t *testing.T) (dbURL, redisURL string) {
	t.Helper()
	base, rURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if base == "" || rURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: process tests on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	opt, err := redis.ParseURL(rURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	u, err := url.Parse(rURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	opt.DB = (opt.DB + 1) % 16
	u.Path = "/" + strconv.Itoa(opt.DB)
	// Start empty: a test before this one may have left tasks (a retry
	// not yet due), and a worker of this test would take them.
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.FlushDB(t.Context()).Err(); err != nil {
		t.Fatalf("flush redis %s: %v", u.Redacted(), err)
	}
	return sqlstoretest.PostgresURL(t), u.String()
}

// buildLessee builds the lessee binary into a temporary directory, or
// returns LESSEE_TEST_BIN when set (to test a given build).
func buildLessee(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("LESSEE_TEST_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "lessee")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built lessee in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rig is one installation of lessee: a PostgreSQL schema, a Redis
// database, a data directory (the embedded S3 lives there and survives
// restarts) and at most one running `lessee serve` process.
type rig struct {
	t         *testing.T
	bin       string
	dbURL     string
	redisURL  string
	data      string
	listen    string
	s3Listen  string
	chunkSize int
	args      []string // more serve flags
	logPath   string

	db      *sqlx.DB
	redis   *redis.Client
	insp    *asynq.Inspector
	objects *s3store.Client

	proc *exec.Cmd
	exit chan error
}

func newRig(t *testing.T, bin, dbURL, redisURL string, chunkSize int) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, bin: bin, dbURL: dbURL, redisURL: redisURL, data: t.TempDir(),
		listen: freeAddr(t), s3Listen: freeAddr(t), chunkSize: chunkSize}
	r.logPath = filepath.Join(r.data, "lessee.log")

	db, err := sqlx.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	r.redis = redis.NewClient(opt)
	t.Cleanup(func() { r.redis.Close() })
	if err := r.redis.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush redis: %v", err)
	}
	ropt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	r.insp = asynq.NewInspector(ropt)
	t.Cleanup(func() { r.insp.Close() })

	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: "http://" + r.s3Listen,
		AccessKey: defaultAccessKey, SecretKey: defaultSecretKey, Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}
	r.objects = objects
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			r.dumpLog()
		}
	})
	return r
}

// lessee runs a one-shot lessee command and fails the test if it fails.
func (r *rig) lessee(args ...string) string {
	r.t.Helper()
	out, err := exec.Command(r.bin, args...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("lessee %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// importRegistry loads the registry files of dir with `lessee registry import`.
func (r *rig) importRegistry(dir string) {
	r.t.Helper()
	r.lessee("registry", "import", "--database-url", r.dbURL, dir)
}

// start runs `lessee serve` and waits until /healthz answers 200.
func (r *rig) start() {
	r.t.Helper()
	if r.proc != nil {
		r.t.Fatal("lessee serve is already running")
	}
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, "serve",
		"--data", r.data, "--listen", r.listen, "--s3-listen", r.s3Listen, "--api-listen", "127.0.0.1:0",
		"--database-url", r.dbURL, "--redis-url", r.redisURL,
		"--scan-interval", "200ms", "--chunk-size", strconv.Itoa(r.chunkSize),
		"--log-format", "json")
	cmd.Args = append(cmd.Args, r.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatalf("start lessee serve: %v", err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait(); logf.Close() }()
	r.proc, r.exit = cmd, exit

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exit:
			r.proc = nil
			r.t.Fatalf("lessee serve exited during start: %v", err)
		default:
		}
		resp, err := client.Get("http://" + r.listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("lessee serve not healthy within 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL and waits for it to be gone.
func (r *rig) kill() {
	r.t.Helper()
	if r.proc == nil {
		return
	}
	if err := r.proc.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Fatalf("kill lessee serve: %v", err)
	}
	<-r.exit
	r.proc = nil
}

// stop ends the process, if any, with SIGTERM (SIGKILL after 30 s).
func (r *rig) stop() {
	if r.proc == nil {
		return
	}
	_ = r.proc.Process.Signal(os.Interrupt)
	select {
	case <-r.exit:
	case <-time.After(30 * time.Second):
		_ = r.proc.Process.Kill()
		<-r.exit
	}
	r.proc = nil
}

// exited reports whether the process ended on its own.
func (r *rig) exited() error {
	select {
	case err := <-r.exit:
		r.proc = nil
		if err == nil {
			err = errors.New("exit status 0")
		}
		return err
	default:
		return nil
	}
}

func (r *rig) dumpLog() {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return
	}
	const max = 20000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	r.t.Logf("lessee serve log (tail):\n%s", b)
}

// upload puts a local file at key through the S3 endpoint.
func (r *rig) upload(key, path string) {
	r.t.Helper()
	if err := r.objects.PutFile(context.Background(), key, path, "text/csv"); err != nil {
		r.t.Fatal(err)
	}
}

// object returns an object's bytes, or nil when it does not exist. While
// no process serves the embedded S3 endpoint, it reads the object from the
// endpoint's folder, which is what the next process will serve.
func (r *rig) object(key string) []byte {
	r.t.Helper()
	if r.proc == nil {
		b, err := os.ReadFile(filepath.Join(r.data, "s3", "buckets", "lessee", filepath.FromSlash(key)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			r.t.Fatalf("read object %s: %v", key, err)
		}
		return b
	}
	var buf bytes.Buffer
	_, err := r.objects.Download(context.Background(), key, "", &buf)
	if errors.Is(err, s3store.ErrNotFound) {
		return nil
	}
	if err != nil {
		r.t.Fatalf("download %s: %v", key, err)
	}
	return buf.Bytes()
}

// receiptFiles returns the receipt files the worker is writing: it builds
// a receipt in <data>/tmp/lessee-receipt-* before uploading it. A killed
// process leaves its file behind, so callers compare with an earlier set.
func (r *rig) receiptFiles() map[string]bool {
	r.t.Helper()
	names, err := filepath.Glob(filepath.Join(r.data, "tmp", "lessee-receipt-*"))
	if err != nil {
		r.t.Fatal(err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out
}

// receiving reports whether the embedded S3 endpoint is receiving an
// object body: it spools bodies in <data>/s3/tmp/ and renames them into
// place when complete.
func (r *rig) receiving() bool {
	r.t.Helper()
	entries, err := os.ReadDir(filepath.Join(r.data, "s3", "tmp"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.t.Fatal(err)
	}
	return len(entries) > 0
}

// progress is the job row of the one file under test.
type progress struct {
	ID        string `db:"id"`
	State     string `db:"state"`
	RowsTotal int    `db:"rows_total"`
	RowsDone  int    `db:"rows_done"`
	Applied   int    `db:"applied"`
	Unchanged int    `db:"unchanged"`
	Rejected  int    `db:"rejected"`
}

// job returns the job row, or ok false while there is none.
func (r *rig) job() (p progress, ok bool) {
	r.t.Helper()
	err := r.db.Get(&p, `SELECT id, state, rows_total, rows_done, applied, unchanged, rejected FROM jobs LIMIT 1`)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") || strings.Contains(err.Error(), "does not exist") {
			return p, false
		}
		r.t.Fatalf("read job: %v", err)
	}
	return p, true
}

// afterKill is what a kill left, read in one snapshot.
type afterKill struct {
	progress
	Results int `db:"results"`
	Audit   int `db:"audit"`
}

// afterKill reads the job and the counts of its results and audit entries
// in one statement, so in one snapshot: PostgreSQL may still be finishing
// the COMMIT the killed process sent, and two separate reads could fall on
// either side of it.
func (r *rig) afterKill() afterKill {
	r.t.Helper()
	var a afterKill
	err := r.db.Get(&a, `SELECT id, state, rows_total, rows_done, applied, unchanged, rejected,
		(SELECT count(*) FROM row_results) AS results,
		(SELECT count(*) FROM audit_log) AS audit
		FROM jobs LIMIT 1`)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		r.t.Fatalf("read job after kill: %v", err)
	}
	return a
}

// count runs a SELECT count(*).
func (r *rig) count(query string) int {
	r.t.Helper()
	var n int
	if err := r.db.Get(&n, query); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// expireLeases makes every active task's Asynq lease look long expired, as
// it will be some 30 s after its worker died; the next server to start
// then recovers the task at once instead of a minute later.
func (r *rig) expireLeases() {
	r.t.Helper()
	ctx := context.Background()
	for _, q := range []string{worker.QueueSmall, worker.QueueLarge} {
		key := "asynq:{" + q + "}:lease"
		ids, err := r.redis.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			r.t.Fatalf("read leases: %v", err)
		}
		for _, id := range ids {
			if err := r.redis.ZAdd(ctx, key, redis.Z{Score: 1, Member: id}).Err(); err != nil {
				r.t.Fatalf("expire lease: %v", err)
			}
		}
	}
}

// runRetries runs every task waiting for a retry now, as an operator's
// "run" in asynqmon does, instead of after Asynq's backoff.
func (r *rig) runRetries() int {
	r.t.Helper()
	n := 0
	for _, q := range []string{worker.QueueSmall, worker.QueueLarge} {
		tasks, err := r.insp.ListRetryTasks(q)
		if err != nil {
			if errors.Is(err, asynq.ErrQueueNotFound) {
				continue
			}
			r.t.Fatalf("list retry tasks: %v", err)
		}
		for _, ti := range tasks {
			if err := r.insp.RunTask(q, ti.ID); err == nil {
				n++
			}
		}
	}
	return n
}

// outcome is what a run left behind, with the job id replaced by "JOB" so
// that two uploads of one file (two jobs) compare equal.
type outcome struct {
	jobID       string
	receiptRows []byte // the receipt CSV after its BOM and header
	summary     map[string]any
	periods     []string
	audit       map[string]int // "change_id|vin|operation|before|after" -> count
	auditRows   int
	results     int
}

// collect reads the outcome of the finished job of submitter's file name.
func (r *rig) collect(submitter, name string) outcome {
	r.t.Helper()
	p, ok := r.job()
	if !ok {
		r.t.Fatal("no job")
	}
	o := outcome{jobID: p.ID, audit: map[string]int{}}
	norm := func(s string) string { return strings.ReplaceAll(s, p.ID, "JOB") }

	receipt := r.object("receipts/" + submitter + "/" + name + ".receipt.csv")
	o.receiptRows = receiptRows(r.t, []byte(norm(string(receipt))))
	if err := json.Unmarshal(r.object("receipts/"+submitter+"/"+name+".summary.json"), &o.summary); err != nil {
		r.t.Fatalf("summary: %v", err)
	}

	var periods []struct {
		ID, VIN, LesseeID, LesseeName, Start, End string
	}
	err := r.db.Select(&periods, `SELECT id AS "id", vin AS "vin", lessee_id AS "lesseeid", lessee_name AS "lesseename",
		start_date AS "start", COALESCE(end_date, '') AS "end" FROM lessee_periods ORDER BY vin, start_date, id`)
	if err != nil {
		r.t.Fatalf("read periods: %v", err)
	}
	for _, pr := range periods {
		o.periods = append(o.periods, norm(strings.Join([]string{pr.VIN, pr.ID, pr.LesseeID, pr.LesseeName, pr.Start, pr.End}, "|")))
	}

	rows, err := r.db.Query(`SELECT change_id, vin, operation, before_json, after_json FROM audit_log`)
	if err != nil {
		r.t.Fatalf("read audit: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f [5]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4]); err != nil {
			r.t.Fatal(err)
		}
		o.audit[norm(strings.Join(f[:], "|"))]++
		o.auditRows++
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	o.results = r.count(`SELECT count(*) FROM row_results`)
	return o
}

// receiptRows returns a receipt CSV without its BOM and header line,
// checking both.
func receiptRows(t *testing.T, b []byte) []byte {
	t.Helper()
	b, ok := bytes.CutPrefix(b, []byte("\ufeff"))
	if !ok {
		t.Fatal("receipt lacks its BOM")
	}
	header, rest, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || string(header) != "row,reference,operation,registration_number,vin,lessee,status,code,message,change_id" {
		t.Fatalf("receipt header = %.200q", header)
	}
	return rest
}

// compareOutcomes checks that two runs of one file left the same receipt
// rows, registry state, audit log and summary counts.
func compareOutcomes(t *testing.T, got, want outcome) {
	t.Helper()
	if !bytes.Equal(got.receiptRows, want.receiptRows) {
		gl, wl := bytes.Split(got.receiptRows, []byte("\r\n")), bytes.Split(want.receiptRows, []byte("\r\n"))
		for i := 0; i < len(gl) || i < len(wl); i++ {
			if i >= len(gl) || i >= len(wl) || !bytes.Equal(gl[i], wl[i]) {
				t.Errorf("receipt rows differ first at data line %d (of %d and %d):\n got  %.300q\n want %.300q",
					i+1, len(gl), len(wl), lineAt(gl, i), lineAt(wl, i))
				break
			}
		}
	}
	for _, k := range []string{"status", "rows", "applied", "unchanged", "rejected", "codes", "format", "size", "sha256"} {
		g, _ := json.Marshal(got.summary[k])
		w, _ := json.Marshal(want.summary[k])
		if !bytes.Equal(g, w) {
			t.Errorf("summary %s = %s, want %s", k, g, w)
		}
	}
	if len(got.periods) != len(want.periods) {
		t.Errorf("lessee_periods: %d rows, want %d", len(got.periods), len(want.periods))
	}
	for i := range min(len(got.periods), len(want.periods)) {
		if got.periods[i] != want.periods[i] {
			t.Errorf("lessee_periods differ first at %d:\n got  %s\n want %s", i, got.periods[i], want.periods[i])
			break
		}
	}
	var doubled, missing, extra []string
	for k, n := range got.audit {
		switch w := want.audit[k]; {
		case w == 0:
			extra = append(extra, k)
		case n > w:
			doubled = append(doubled, k)
		}
	}
	for k := range want.audit {
		if got.audit[k] == 0 {
			missing = append(missing, k)
		}
	}
	for _, l := range []struct {
		what string
		keys []string
	}{{"doubled", doubled}, {"missing", missing}, {"unexpected", extra}} {
		if len(l.keys) > 0 {
			sort.Strings(l.keys)
			t.Errorf("%d audit entries %s, e.g. %s", len(l.keys), l.what, l.keys[0])
		}
	}
	if got.auditRows != want.auditRows || got.results != want.results {
		t.Errorf("audit rows %d, results %d; want %d, %d", got.auditRows, got.results, want.auditRows, want.results)
	}
}

func lineAt(lines [][]byte, i int) []byte {
	if i < len(lines) {
		return lines[i]
	}
	return nil
}

// intentMismatches counts receipt rows whose outcome is not the one the
// generator wrote into the reference ("R0000001-applied").
func intentMismatches(t *testing.T, rows []byte) (n int, first string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(rows)).ReadAll()
	if err != nil {
		t.Fatalf("parse receipt: %v", err)
	}
	for _, rec := range recs {
		_, intent, _ := strings.Cut(rec[1], "-")
		got := rec[6]
		if got == "rejected" {
			got = rec[7]
		}
		if got != intent {
			if n == 0 {
				first = strings.Join(rec, ",")
			}
			n++
		}
	}
	return n, first
}

// poll checks cond every interval until it holds or the timeout passes.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// timeline records when things happened in a run.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	marks []string
}

func (tl *timeline) mark(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.marks = append(tl.marks, fmt.Sprintf("%7.2fs ", time.Since(tl.start).Seconds())+fmt.Sprintf(format, args...))
}

// snapshotIntentMismatches counts the receipt lines of a generated
// snapshot whose derived operation and status are not the ones the
// generator meant ("S0000001-keep"; "-duplicate" for a vehicle named
// again); lines without a row, the vehicles the file left out, must be
// applied removals.
func snapshotIntentMismatches(t *testing.T, rows []byte) (n int, first string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(rows)).ReadAll()
	if err != nil {
		t.Fatalf("parse receipt: %v", err)
	}
	status := map[string]string{"keep": "unchanged", "add": "applied", "replace": "applied", "remove": "applied"}
	for _, rec := range recs {
		var ok bool
		switch _, intent, _ := strings.Cut(rec[1], "-"); {
		case rec[0] == "":
			ok = rec[2] == "remove" && rec[6] == "applied"
		case intent == "duplicate":
			ok = rec[7] == "DUPLICATE_VEHICLE"
		default:
			ok = rec[2] == intent && rec[6] == status[intent]
		}
		if !ok {
			if n == 0 {
				first = strings.Join(rec, ",")
			}
			n++
		}
	}
	return n, first
}
