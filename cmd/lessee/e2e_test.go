package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/worker"
)

// e2e is one running service and a client to its S3 endpoint.
type e2e struct {
	svc     *service
	objects *s3store.Client
	logs    *lockedBuffer
	// s3Clock is the embedded S3 endpoint's clock: the real time plus an
	// offset a test moves on instead of sleeping.
	s3Clock *offsetClock
}

// offsetClock is the real clock plus an offset that only grows.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// startService runs `lessee serve` in-process with every listener on a
// free port, scanning every 100 ms, and returns when it is ready.
func startService(t *testing.T, cfg serveConfig) *e2e {
	t.Helper()
	// Tests pass either a zero config with only service URLs or one made
	// from defaultServeConfig() with their own settings.
	base := cfg
	if base.Bucket == "" {
		base = defaultServeConfig()
		base.DatabaseURL, base.RedisURL = cfg.DatabaseURL, cfg.RedisURL
	}
	base.ScanInterval = 100 * time.Millisecond
	e, _ := launchService(t, base)
	return e
}

// launchService runs `lessee serve` in-process with cfg, its data in a
// temporary directory and every listener on a free port. stop ends it
// before the test does (it also runs at cleanup); the service's log is
// shown when the test fails while it runs.
func launchService(t *testing.T, cfg serveConfig) (e *e2e, stop func()) {
	t.Helper()
	cfg.Data = t.TempDir()
	// A free port each, unless the test needs a known HTTP address.
	if cfg.Listen == "" || cfg.Listen == defaultServeConfig().Listen {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.S3Listen = "127.0.0.1:0"
	if cfg.APIListen != "" {
		cfg.APIListen = "127.0.0.1:0"
	}
	logs := &lockedBuffer{}
	log, err := newLogger(logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	clock := &offsetClock{}
	svc := &service{cfg: cfg, log: log, s3Now: clock.Now}
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.start(ctx); err != nil {
		cancel()
		svc.close()
		t.Fatalf("start service: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			svc.close()
			if t.Failed() {
				t.Logf("service log (tail):\n%s", tail([]byte(logs.String()), 30000))
			}
		})
	}
	t.Cleanup(stop)
	access, secret := defaultAccessKey, defaultSecretKey
	if cfg.S3AccessKey != "" {
		access, secret = cfg.S3AccessKey, cfg.S3SecretKey
	}
	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: svc.s3Endpoint, AccessKey: access, SecretKey: secret, Bucket: cfg.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{svc: svc, objects: objects, logs: logs, s3Clock: clock}, stop
}

func TestEndToEndEmbedded(t *testing.T) {
	runEndToEnd(t, startService(t, serveConfig{}))
}

func TestEndToEndPostgresRedis(t *testing.T) {
	dbURL, redisURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || redisURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL not set: end-to-end test on real PostgreSQL and Redis skipped (.ci/run sets them)")
	}
	ctx := context.Background()
	// A fresh schema and a flushed Redis database keep runs independent.
	db, err := sqlx.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	ropt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ropt)
	defer rc.Close()
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	// Load the demo registry through the CLI, as an operator would.
	dir := t.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LESSEE_DATABASE_URL": u.String()}
	var out bytes.Buffer
	if err := run(ctx, []string{"registry", "import", dir}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatalf("registry import: %v\n%s", err, out.String())
	}
	runEndToEnd(t, startService(t, serveConfig{DatabaseURL: u.String(), RedisURL: redisURL}))
}

// runEndToEnd uploads the example change files and checks every receipt
// row against the expected outcomes kept beside them.
func runEndToEnd(t *testing.T, e *e2e) {
	ctx := context.Background()
	const nordlys, partner, noTerms = "912345602", "912345629", "912345653"

	t.Run("AllOutcomes", func(t *testing.T) {
		e.upload(t, "inbox/"+nordlys+"/all-outcomes.csv", "changes/all-outcomes.csv")
		summary := e.waitSummary(t, nordlys, "all-outcomes.csv")
		if summary["status"] != "completed" {
			t.Fatalf("summary status = %v, want completed: %v", summary["status"], summary)
		}
		rows := e.receiptRows(t, nordlys, "all-outcomes.csv")
		checkExpected(t, rows, "changes/all-outcomes.expected.csv")
		// The summary is published before the source moves to archive/: a
		// copy, then the inbox object's delete.
		waitFor(t, 10*time.Second, func() bool {
			_, err := e.objects.Head(ctx, "archive/"+nordlys+"/all-outcomes.csv")
			_, inboxErr := e.objects.Head(ctx, "inbox/"+nordlys+"/all-outcomes.csv")
			return err == nil && errors.Is(inboxErr, s3store.ErrNotFound)
		})
		for _, r := range rows {
			if regexp.MustCompile(`\d{11}`).MatchString(strings.Join(r, ",")) {
				t.Errorf("receipt row holds an unmasked identity number: %q", r)
			}
		}
	})

	firstJob := ""
	t.Run("ReceiptLinkedFromJobPage", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := e.objects.Download(ctx, "receipts/"+nordlys+"/all-outcomes.csv.receipt.csv", "", &buf); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + e.svc.httpAddr + "/api/jobs")
		if err != nil {
			t.Fatal(err)
		}
		var jobs []struct{ ID, Name string }
		err = json.NewDecoder(resp.Body).Decode(&jobs)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, j := range jobs {
			if j.Name == "all-outcomes.csv" {
				id = j.ID
			}
		}
		page, err := http.Get("http://" + e.svc.httpAddr + "/jobs")
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		firstJob = id
		if id == "" || !strings.Contains(string(html), `href="/api/jobs/`+id+`/receipt"`) {
			t.Fatalf("job page does not link the receipt of job %q", id)
		}
		resp, err = http.Get("http://" + e.svc.httpAddr + "/api/jobs/" + id + "/receipt")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("GET /api/jobs/%s/receipt = %d, %d bytes; want the stored receipt (%d bytes)", id, resp.StatusCode, len(got), buf.Len())
		}
	})

	t.Run("ProgressInTaskResult", func(t *testing.T) {
		insp := asynq.NewInspector(e.svc.redisOpt)
		defer insp.Close()
		tasks, err := insp.ListCompletedTasks(worker.QueueSmall)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, task := range tasks {
			found = found || strings.Contains(string(task.Result), `"rows_done":22,"rows_total":22`)
		}
		if !found {
			t.Errorf("no completed task shows the progress of the 22-row file in its result (%d tasks)", len(tasks))
		}
	})

	t.Run("ReuploadIsUnchanged", func(t *testing.T) {
		before, err := e.svc.store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		// A re-upload is a new object version, so it is processed again.
		// Without bucket versioning a version is the ETag and the second
		// of upload: identical bytes within one second are one upload.
		e.s3Clock.Add(time.Second)
		e.deleteReceipt(t, nordlys, "all-outcomes.csv")
		e.upload(t, "inbox/"+nordlys+"/all-outcomes.csv", "changes/all-outcomes.csv")
		e.waitSummary(t, nordlys, "all-outcomes.csv")
		rows := e.receiptRows(t, nordlys, "all-outcomes.csv")
		for _, r := range rows {
			if r[6] == "applied" {
				t.Errorf("row %s applied again on re-upload: %q", r[0], r)
			}
		}
		after, err := e.svc.store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Errorf("audit entries: %d before re-upload, %d after", len(before), len(after))
		}
		// The latest receipt is the re-upload's; the first upload's job
		// still serves its own, from its history folder: the rows it
		// applied.
		resp, err := http.Get("http://" + e.svc.httpAddr + "/api/jobs/" + firstJob + "/receipt")
		if err != nil {
			t.Fatal(err)
		}
		first, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if firstJob == "" || resp.StatusCode != http.StatusOK || !strings.Contains(string(first), ",applied,") {
			t.Errorf("the first job's receipt link answers %d (job %q): %.200s", resp.StatusCode, firstJob, first)
		}
	})

	t.Run("ThirdParty", func(t *testing.T) {
		e.upload(t, "inbox/"+partner+"/third-party.csv", "changes/third-party.csv")
		e.waitSummary(t, partner, "third-party.csv")
		checkExpected(t, e.receiptRows(t, partner, "third-party.csv"), "changes/third-party.expected.csv")
	})

	t.Run("RefusedMissingColumn", func(t *testing.T) {
		e.upload(t, "inbox/"+nordlys+"/missing-column.csv", "changes/missing-column.csv")
		s := e.waitSummary(t, nordlys, "missing-column.csv")
		if s["status"] != "refused" || s["code"] != "MISSING_COLUMN" {
			t.Errorf("summary = %v, want refused MISSING_COLUMN", s)
		}
		waitFor(t, 10*time.Second, func() bool {
			_, err := e.objects.Head(ctx, "failed/"+nordlys+"/missing-column.csv")
			return err == nil
		})
	})

	t.Run("RefusedNoTerms", func(t *testing.T) {
		e.upload(t, "inbox/"+noTerms+"/all-outcomes.csv", "changes/all-outcomes.csv")
		s := e.waitSummary(t, noTerms, "all-outcomes.csv")
		if s["status"] != "refused" || s["code"] != "TERMS_NOT_ACCEPTED" {
			t.Errorf("summary = %v, want refused TERMS_NOT_ACCEPTED", s)
		}
	})

	t.Run("NoValidSubmitterQuarantined", func(t *testing.T) {
		e.upload(t, "inbox/123456789/x.csv", "changes/all-outcomes.csv")
		waitFor(t, 20*time.Second, func() bool {
			_, err := e.objects.Head(ctx, "inbox/123456789/x.csv")
			return errors.Is(err, s3store.ErrNotFound)
		})
		found := false
		e.objects.List(ctx, "quarantine/", func(o lessee.Object) error {
			found = found || strings.HasSuffix(o.Key, "x.csv")
			return nil
		})
		if !found {
			t.Error("upload with an invalid orgnr not moved to quarantine/")
		}
	})

	t.Run("LogsHoldNoIdentityNumbers", func(t *testing.T) {
		if m := regexp.MustCompile(`\b\d{11}\b`).FindString(e.logs.String()); m != "" {
			t.Errorf("logs hold an unmasked 11-digit number %s", m)
		}
	})
}

func (e *e2e) upload(t *testing.T, key, example string) {
	t.Helper()
	b, err := fs.ReadFile(examples.FS(), example)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.objects.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), "text/csv"); err != nil {
		t.Fatalf("upload %s: %v", key, err)
	}
}

func (e *e2e) deleteReceipt(t *testing.T, submitter, name string) {
	t.Helper()
	for _, suffix := range []string{".receipt.csv", ".summary.json"} {
		if err := e.objects.Delete(context.Background(), "receipts/"+submitter+"/"+name+suffix); err != nil {
			t.Fatal(err)
		}
	}
}

// waitSummary waits for the summary JSON of a file and returns it.
func (e *e2e) waitSummary(t *testing.T, submitter, name string) map[string]any {
	t.Helper()
	key := "receipts/" + submitter + "/" + name + ".summary.json"
	var buf bytes.Buffer
	waitFor(t, 30*time.Second, func() bool {
		buf.Reset()
		_, err := e.objects.Download(context.Background(), key, "", &buf)
		return err == nil
	})
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("summary %s: %v", key, err)
	}
	return m
}

// receiptRows returns the data rows of a receipt CSV, checking its header.
func (e *e2e) receiptRows(t *testing.T, submitter, name string) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := e.objects.Download(context.Background(), "receipts/"+submitter+"/"+name+".receipt.csv", "", &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\ufeff")) {
		t.Error("receipt lacks the UTF-8 BOM")
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(buf.Bytes(), []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != "row,reference,operation,registration_number,vin,lessee,status,code,message,change_id" {
		t.Fatalf("receipt header = %s", got)
	}
	return recs[1:]
}

// checkExpected compares receipt rows with NAME.expected.csv (row,status,code).
func checkExpected(t *testing.T, rows [][]string, expected string) {
	t.Helper()
	b, err := fs.ReadFile(examples.FS(), expected)
	if err != nil {
		t.Fatal(err)
	}
	want, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	if len(rows) != len(want) {
		t.Fatalf("receipt has %d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		if r[0] != w[0] || r[6] != w[1] || r[7] != w[2] {
			t.Errorf("row %s: got %s %s (%s), want %s %s", w[0], r[6], r[7], r[8], w[1], w[2])
		}
		if r[8] == "" {
			t.Errorf("row %s has no message", w[0])
		}
		if (r[6] == "applied") != (r[9] != "") {
			t.Errorf("row %s: change_id %q does not match status %s", w[0], r[9], r[6])
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
