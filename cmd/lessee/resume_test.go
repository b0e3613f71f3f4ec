package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetreg/lessee/gen"
)

// TestKilledWorkerResumesWithin measures what docs/operations.md promises:
// a worker killed with SIGKILL mid-file has its file resumed by another
// worker within --resume-after plus a few seconds (Asynq alone: 60 to
// 120 s), and the file then finishes with every row counted once.
func TestKilledWorkerResumesWithin(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped with -short")
	}
	t.Parallel()
	dbURL, redisURL := realServices(t)
	bin := buildLessee(t)
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 3, Enterprises: 10, Vehicles: 5000})
	if err != nil {
		t.Fatal(err)
	}
	const rows = 40000
	submitter, file := reg.LargestFleet(), filepath.Join(dir, "fleet.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.WriteChanges(f, reg, gen.ChangesConfig{Seed: 3, Rows: rows, Submitter: submitter}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	const resumeAfter = 10 * time.Second
	r := newRig(t, bin, dbURL, redisURL, 100)
	r.args = []string{"--resume-after", resumeAfter.String()}
	r.importRegistry(regDir)
	r.start()
	defer r.stop()
	r.upload("inbox/"+submitter+"/fleet.csv", file)
	var atKill progress
	if !poll(2*time.Minute, 5*time.Millisecond, func() bool {
		p, ok := r.job()
		atKill = p
		return ok && p.RowsDone > 0
	}) {
		r.dumpLog()
		t.Fatal("the file did not start within 2 minutes")
	}
	r.kill()
	killed := time.Now()
	if atKill.RowsDone == rows {
		t.Fatal("the file finished before the kill; make it larger")
	}

	// Another worker (here: the next process) takes over.
	r.start()
	if !poll(2*time.Minute, 20*time.Millisecond, func() bool {
		p, _ := r.job()
		return p.RowsDone > atKill.RowsDone
	}) {
		r.dumpLog()
		t.Fatalf("the file did not resume within 2 minutes of the kill (rows done at the kill: %d)", atKill.RowsDone)
	}
	waited := time.Since(killed)
	// The last heartbeat came up to 5 s before the kill; then one check
	// (1 s), the retry's backoff (up to 1.5 s), the retry check and the
	// worker's poll (1 s each), one chunk's commit and the restart.
	bound := resumeAfter + 10*time.Second
	t.Logf("killed at row %d of %d; resumed %s later (--resume-after %s, bound %s)",
		atKill.RowsDone, rows, waited.Round(10*time.Millisecond), resumeAfter, bound)
	if waited > bound {
		t.Errorf("resumed %s after the kill, want within %s", waited, bound)
	}

	if !poll(3*time.Minute, 50*time.Millisecond, func() bool {
		p, _ := r.job()
		return p.State != "running" && p.State != "queued"
	}) {
		r.dumpLog()
		t.Fatal("the resumed file did not finish within 3 minutes")
	}
	p, _ := r.job()
	if p.RowsDone != rows || p.Applied+p.Unchanged+p.Rejected != rows {
		t.Errorf("finished job: %+v, want %d rows each counted once", p, rows)
	}
}
