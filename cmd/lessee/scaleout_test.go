package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/storage/s3store"
)

// TestScaleOut runs the production shape: one HTTP process and two worker
// processes sharing PostgreSQL, Redis and one S3 endpoint. Ten submitters
// upload 50 files at once; one worker is stopped mid-run. Every file must
// be processed exactly once, correctly, by both workers between them.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three lessee processes")
	}
	dbURL, redisURL := realServices(t)
	bin := buildLessee(t)
	ctx := context.Background()

	// One S3 endpoint for all processes, as MinIO would be.
	srv, err := s3store.NewServer(s3store.ServerConfig{Dir: t.TempDir(), Bucket: "lessee", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s3ctx, stopS3 := context.WithCancel(ctx)
	defer stopS3()
	go srv.Serve(s3ctx, ln)
	s3URL := "http://" + ln.Addr().String()
	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: s3URL, AccessKey: "k", SecretKey: "s", Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}

	// Registry and files: ten submitters, five files each; each file of a
	// submitter touches its own fifth of the submitter's fleet, so every
	// row's intended outcome holds whatever order the files run in.
	dir := t.TempDir()
	reg, err := gen.WriteRegistry(filepath.Join(dir, "registry"), gen.RegistryConfig{Seed: 7, Enterprises: 40, Vehicles: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("lessee migrate: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "registry", "import", "--database-url", dbURL, filepath.Join(dir, "registry")).CombinedOutput(); err != nil {
		t.Fatalf("lessee registry import: %v\n%s", err, out)
	}
	submitters := pickSubmitters(reg, 10)
	if len(submitters) < 10 {
		t.Fatalf("the generated registry has only %d fleet owners with terms and vehicles", len(submitters))
	}

	common := []string{"--database-url", dbURL, "--redis-url", redisURL, "--s3-endpoint", s3URL,
		"--s3-access-key", "k", "--s3-secret-key", "s", "--migrate=false", "--scan-interval", "200ms",
		"--chunk-size", "200", "--log-format", "json"}
	httpProc := startProcess(t, bin, "http", append([]string{"serve", "--role", "http", "--data", t.TempDir()}, common...))
	w1 := startProcess(t, bin, "worker-1", append([]string{"serve", "--role", "worker", "--data", t.TempDir(), "--small-workers", "1"}, common...))
	w2 := startProcess(t, bin, "worker-2", append([]string{"serve", "--role", "worker", "--data", t.TempDir(), "--small-workers", "1"}, common...))
	_ = httpProc

	type upload struct{ submitter, name string }
	var uploads []upload
	var wg sync.WaitGroup
	for si, sub := range submitters {
		for part := range 5 {
			name := fmt.Sprintf("fleet-%d.csv", part)
			var buf bytes.Buffer
			if err := gen.WriteChanges(&buf, fleetPart(reg, sub, part, 5), gen.ChangesConfig{Seed: int64(100*si + part), Rows: 400, Submitter: sub}); err != nil {
				t.Fatal(err)
			}
			uploads = append(uploads, upload{sub, name})
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := objects.Put(ctx, "inbox/"+sub+"/"+name, bytes.NewReader(buf.Bytes()), int64(buf.Len()), "text/csv"); err != nil {
					t.Errorf("upload: %v", err)
				}
			}()
		}
	}
	wg.Wait()

	want := make(map[string]bool, len(uploads))
	for _, u := range uploads {
		want["receipts/"+u.submitter+"/"+u.name+".summary.json"] = true
	}
	summaries := func() int {
		n := 0
		objects.List(ctx, "receipts/", func(o lessee.Object) error {
			// The latest summaries of this test's uploads only: each job's
			// own copy in its history folder is not counted, nor anything
			// a stray task might have written.
			if want[o.Key] {
				n++
			}
			return nil
		})
		return n
	}
	// Stop worker-1 mid-run, once it has finished a file of its own (an
	// idle Asynq server looks for tasks once a second, and worker-2 alone
	// can finish ten files in that time); worker-2 must finish the rest.
	if !poll(2*time.Minute, 50*time.Millisecond, func() bool { return summaries() >= 10 && len(w1.processed(t)) > 0 }) {
		t.Fatalf("no progress: %d files done and worker-1 finished %d after 2 minutes", summaries(), len(w1.processed(t)))
	}
	stoppedAt := summaries()
	w1.stop(t)
	if !poll(3*time.Minute, 100*time.Millisecond, func() bool { return summaries() == len(uploads) }) {
		t.Fatalf("only %d of %d files finished after worker-1 stopped at %d", summaries(), len(uploads), stoppedAt)
	}
	w2.stop(t)

	// Every receipt complete and every row as intended.
	applied := 0
	for _, u := range uploads {
		var buf bytes.Buffer
		if _, err := objects.Download(ctx, "receipts/"+u.submitter+"/"+u.name+".receipt.csv", "", &buf); err != nil {
			t.Fatal(err)
		}
		rows := receiptRows(t, buf.Bytes())
		if n := bytes.Count(rows, []byte("\n")); n != 400 {
			t.Errorf("%s/%s: receipt has %d rows, want 400", u.submitter, u.name, n)
		}
		if n, first := intentMismatches(t, rows); n > 0 {
			t.Errorf("%s/%s: %d rows not as intended, first: %s", u.submitter, u.name, n, first)
		}
		applied += bytes.Count(rows, []byte(",applied,"))
	}

	// Exactly once: one completed job per upload, one audit entry per
	// applied row.
	db, err := sqlx.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var jobs, audits int
	if err := db.Get(&jobs, "SELECT count(*) FROM jobs WHERE state = $1", lessee.JobCompleted); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&audits, "SELECT count(*) FROM audit_log"); err != nil {
		t.Fatal(err)
	}
	if jobs != len(uploads) || audits != applied {
		t.Errorf("%d completed jobs for %d uploads; %d audit entries for %d applied rows", jobs, len(uploads), audits, applied)
	}

	// Both workers did work, and no file was finished twice.
	done1, done2 := w1.processed(t), w2.processed(t)
	t.Logf("worker-1 finished %d files before it was stopped (at %d of %d done); worker-2 finished %d", len(done1), stoppedAt, len(uploads), len(done2))
	if len(done1) == 0 || len(done2) == 0 {
		t.Errorf("work not spread: worker-1 %d files, worker-2 %d", len(done1), len(done2))
	}
	for id := range done1 {
		if done2[id] {
			t.Errorf("job %s finished by both workers", id)
		}
	}
	if len(done1)+len(done2) != len(uploads) {
		t.Errorf("workers finished %d + %d files, want %d", len(done1), len(done2), len(uploads))
	}
}

// pickSubmitters returns up to n fleet owners that accepted the lessee API
// agreement and own at least 50 vehicles.
func pickSubmitters(reg gen.Registry, n int) []string {
	owned := map[string]int{}
	for _, v := range reg.Vehicles {
		owned[v.Owner]++
	}
	var subs []string
	for _, e := range reg.Enterprises {
		if len(subs) == n {
			break
		}
		if e.FleetOwner && owned[e.OrgNr] >= 50 && e.Accepted(lessee.AgreementLesseeAPI, time.Now()) {
			subs = append(subs, e.OrgNr)
		}
	}
	return subs
}

// fleetPart is reg with only every k-th of submitter's vehicles (offset
// part) among its own, so files made from different parts never touch the
// same vehicle of the submitter.
func fleetPart(reg gen.Registry, submitter string, part, k int) gen.Registry {
	out := reg
	out.Vehicles = nil
	i := 0
	for _, v := range reg.Vehicles {
		if v.Owner == submitter {
			if i%k != part {
				i++
				continue
			}
			i++
		}
		out.Vehicles = append(out.Vehicles, v)
	}
	return out
}

// process is one `lessee serve` child process with its log.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startProcess(t *testing.T, bin, name string, args []string) *process {
	t.Helper()
	listen := freeAddr(t)
	args = append(args, "--listen", listen, "--api-listen", "127.0.0.1:0")
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
	if !poll(30*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("%s not healthy within 30 s", name)
	}
	return p
}

// stop sends SIGTERM and waits: the worker finishes or hands back its task.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// processed returns the job ids the process logged as processed.
func (p *process) processed(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	re := regexp.MustCompile(`"msg":"file processed","job_id":"([a-z]+)"`)
	for _, m := range re.FindAllSubmatch(b, -1) {
		id := string(m[1])
		if ids[id] {
			t.Errorf("%s processed job %s twice", p.name, id)
		}
		ids[id] = true
	}
	return ids
}
