package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestSourceChangedAfterKill: a file's worker is SIGKILLed mid-file; then
// the file is overwritten with other bytes (or deleted) under the same key
// while the restarted service resumes it. The job ends with the receipt of
// the bytes it started with: every row of the original file, its sha256,
// in the job's history folder; the original bytes are archived (deleted
// case), and the overwriting upload gets a job and receipt of its own.
func TestSourceChangedAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped with -short")
	}
	_, _ = realServices(t) // skips, visibly, without PostgreSQL and Redis
	redisURL := redisDB(t, os.Getenv("TEST_REDIS_URL"), 7)
	bin := buildLessee(t)
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 5, Enterprises: 10, Vehicles: 8000})
	if err != nil {
		t.Fatal(err)
	}
	const rows = 20000
	submitter, file := reg.LargestFleet(), filepath.Join(dir, "fleet.csv")
	var orig bytes.Buffer
	if err := gen.WriteChanges(&orig, reg, gen.ChangesConfig{Seed: 5, Rows: rows, Submitter: submitter}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, orig.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(orig.Bytes())
	other := filepath.Join(dir, "other.csv")
	lines := strings.SplitAfterN(orig.String(), "\n", 4) // the header and two rows
	if err := os.WriteFile(other, []byte(lines[0]+lines[1]+lines[2]), 0o644); err != nil {
		t.Fatal(err)
	}
	key := "inbox/" + submitter + "/fleet.csv"

	for _, mode := range []string{"overwritten", "deleted"} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, bin, sqlstoretest.PostgresURL(t), redisURL, 500)
			r.importRegistry(regDir)
			r.start()
			r.upload(key, file)
			var jobID string
			if !poll(3*time.Minute, 5*time.Millisecond, func() bool {
				p, ok := r.job()
				jobID = p.ID
				return ok && p.RowsDone >= rows/4
			}) {
				t.Fatal("the file did not reach a quarter of its rows within 3 minutes")
			}
			r.kill()
			var done int
			if err := r.db.Get(&done, `SELECT rows_done FROM jobs WHERE id = $1`, jobID); err != nil {
				t.Fatal(err)
			}
			if done >= rows {
				t.Fatalf("killed after all %d rows: no mid-file kill", done)
			}
			r.expireLeases()
			r.start()
			switch mode {
			case "overwritten":
				r.upload(key, other)
			case "deleted":
				if err := r.objects.Delete(context.Background(), key); err != nil {
					t.Fatal(err)
				}
			}
			var state, sha, history string
			var total int
			if !poll(3*time.Minute, 200*time.Millisecond, func() bool {
				r.runRetries()
				err := r.db.QueryRow(`SELECT state, sha256, history, rows_done FROM jobs WHERE id = $1`, jobID).Scan(&state, &sha, &history, &total)
				return err == nil && state == "completed" && history != ""
			}) {
				t.Fatalf("killed at row %d of %d: job %s not completed within 3 minutes (state %q)", done, rows, jobID, state)
			}
			t.Logf("killed at row %d of %d, then %s; the job completed", done, rows, mode)
			if total != rows || sha != hex.EncodeToString(sum[:]) {
				t.Errorf("job: %d rows, sha256 %s; want %d rows of the original bytes", total, sha, rows)
			}
			receipt := r.object(objectkey.HistoryFor(submitter, jobID, "fleet.csv", false).CSV)
			if n := bytes.Count(receipt, []byte("\r\n")) - 1; n != rows {
				t.Errorf("the job's receipt has %d rows, want %d", n, rows)
			}
			switch mode {
			case "deleted":
				if got := r.object("archive/" + submitter + "/fleet.csv"); !bytes.Equal(got, orig.Bytes()) {
					t.Errorf("the archive holds %d bytes, not the %d processed", len(got), orig.Len())
				}
			case "overwritten":
				// The overwriting upload is processed as its own job.
				if !poll(time.Minute, 100*time.Millisecond, func() bool {
					return r.count(`SELECT count(*) FROM jobs WHERE id <> '`+jobID+`' AND state = 'completed' AND rows_done = 2`) == 1
				}) {
					t.Error("the overwriting upload got no job of its own")
				}
			}
			if n := r.count(`SELECT count(*) FROM audit_log WHERE job_id = '` + jobID + `'`); n != r.count(`SELECT applied FROM jobs WHERE id = '`+jobID+`'`) {
				t.Errorf("%d audit entries for the job's applied rows", n)
			}
		})
	}
}
