package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/worker"
)

// TestSecondInterruptStopsAtOnce runs the real binary on PostgreSQL and
// Redis, uploads a file of 60,000 rows processed in chunks of 200, and
// sends SIGINT mid-file: the process says which file it waits for, how far
// it came, for how long and that a second interrupt stops at once. The
// second SIGINT ends it within a few seconds, with exit status 130 and a
// last line saying it stopped at once and what it cut off. The file's task
// is back in its queue with no attempt counted; after a restart the file
// resumes from its checkpoint (not from row 0) and completes with a
// complete receipt and every row once. Stopping idle says so too, and
// that it stopped cleanly.
func TestSecondInterruptStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped with -short")
	}
	dbURL, redisURL := realServices(t)
	bin := buildLessee(t)
	const rows, chunk = 60000, 200
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 3, Enterprises: 30, Vehicles: 20000})
	if err != nil {
		t.Fatal(err)
	}
	submitter, name := reg.LargestFleet(), "big.csv"
	file := filepath.Join(dir, name)
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
	key := "inbox/" + submitter + "/" + name
	summaryKey := "receipts/" + submitter + "/" + name + ".summary.json"

	r := newRig(t, bin, dbURL, redisURL, chunk)
	r.importRegistry(regDir)
	r.start()
	r.upload(key, file)
	if !poll(2*time.Minute, 10*time.Millisecond, func() bool { p, ok := r.job(); return ok && p.RowsDone >= 10*chunk }) {
		t.Fatal("the file did not get going within 2 minutes")
	}
	if p, _ := r.job(); p.RowsDone == rows {
		t.Fatal("the file finished before the interrupt: make it larger")
	}
	logFrom := logSize(t, r)
	if err := r.proc.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var said string
	if !poll(10*time.Second, 10*time.Millisecond, func() bool {
		said = logSince(t, r, logFrom)
		return strings.Contains(said, "a file cut off resumes")
	}) {
		t.Fatalf("nothing said within 10 s of the first SIGINT:\n%s", said)
	}
	p, _ := r.job()
	for _, want := range []string{
		"lessee: stopping: waiting up to 25s for 1 file to finish:\n",
		"  job " + p.ID + "  " + key + "  ",
		" of 60000 rows committed\n",
		"  Ctrl-C again stops at once; a file cut off resumes from its last committed chunk at the next start.\n",
		`"msg":"stopping: waiting for file","job_id":"` + p.ID + `","key":"` + key + `"`, // the structured line
	} {
		if !strings.Contains(said, want) {
			t.Errorf("after the first SIGINT the output lacks %q:\n%s", want, said)
		}
	}
	// The first interrupt waits: the file goes on.
	time.Sleep(300 * time.Millisecond)
	if err := r.exited(); err != nil {
		t.Fatalf("the process ended at the first SIGINT: %v", err)
	}
	sent := time.Now()
	if err := r.proc.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-r.exit:
		r.proc = nil
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after the second SIGINT:\n%s", logSince(t, r, logFrom))
	}
	took := time.Since(sent)
	t.Logf("gone %s after the second SIGINT", took.Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want status 130", exitErr)
	}
	said = logSince(t, r, logFrom)
	lines := strings.Split(strings.TrimSpace(said), "\n")
	var last []string // the lines after the final "lessee:" line begins
	for i, l := range lines {
		if strings.HasPrefix(l, "lessee: stopped") {
			last = lines[i:]
		}
	}
	if len(last) == 0 || !strings.HasPrefix(last[0], "lessee: stopped at once; 1 file cut off, to resume from the last committed chunk at the next start:") {
		t.Fatalf("no final line saying it stopped at once:\n%s", said)
	}
	after := r.afterKill()
	if len(last) < 2 || !strings.Contains(last[1], "job "+p.ID+"  "+key+"  ") {
		t.Errorf("the final lines do not name the file cut off:\n%s", strings.Join(last, "\n"))
	} else if want := strconv.Itoa(after.RowsDone) + " of 60000 rows committed"; !strings.HasSuffix(last[1], want) {
		t.Errorf("final line %q, want it to end %q (the checkpoint)", last[1], want)
	}
	if after.State == "completed" || after.RowsDone == rows {
		t.Fatalf("the file finished before the second SIGINT (%+v): make it larger", after.progress)
	}
	if after.Results != after.RowsDone {
		t.Errorf("stopped with %d stored results and checkpoint %d", after.Results, after.RowsDone)
	}
	// Back in its queue at once, no attempt counted: not waiting for a
	// lease to expire or a retry to come due.
	ti, err := r.insp.GetTaskInfo(worker.QueueLarge, p.ID)
	if err != nil {
		t.Fatalf("the file's task: %v", err)
	}
	if ti.State != asynq.TaskStatePending || ti.Retried != 0 {
		t.Errorf("task after the stop: state %v, retried %d; want pending, 0", ti.State, ti.Retried)
	}

	// The next start resumes it from its checkpoint and completes it.
	checkpoint := after.RowsDone
	logFrom = logSize(t, r)
	r.start()
	if !poll(3*time.Minute, 20*time.Millisecond, func() bool { return r.object(summaryKey) != nil }) {
		t.Fatal("no summary within 3 minutes of the restart")
	}
	resumed := logSince(t, r, logFrom)
	var resumeAt = -1
	for _, l := range strings.Split(resumed, "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			JobID    string `json:"job_id"`
			ResumeAt int    `json:"resume_at"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "processing file" && rec.JobID == p.ID {
			resumeAt = rec.ResumeAt
		}
	}
	if resumeAt < checkpoint || resumeAt == 0 {
		t.Errorf("the restart processed the file from row %d, want its checkpoint %d", resumeAt, checkpoint)
	}
	var summary map[string]any
	if err := json.Unmarshal(r.object(summaryKey), &summary); err != nil {
		t.Fatal(err)
	}
	if summary["status"] != "completed" || summary["rows"] != float64(rows) {
		t.Fatalf("summary: status %v, rows %v; want completed, %d", summary["status"], summary["rows"], rows)
	}
	receiptRowsOf := receiptRows(t, r.object("receipts/"+submitter+"/"+name+".receipt.csv"))
	recs, err := csv.NewReader(bytes.NewReader(receiptRowsOf)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int, rows)
	for _, rec := range recs {
		seen[rec[0]]++
	}
	for i := 1; i <= rows; i++ {
		if n := seen[strconv.Itoa(i+1)]; n != 1 { // data rows start on line 2
			t.Fatalf("receipt has row %d %d times, want once (%d receipt lines)", i+1, n, len(recs))
		}
	}
	if n, first := intentMismatches(t, receiptRowsOf); n > 0 {
		t.Errorf("%d rows differ from the generator's intent, first: %s", n, first)
	}
	final := r.afterKill()
	if final.Results != rows || final.Audit != final.Applied || final.Applied+final.Unchanged+final.Rejected != rows {
		t.Errorf("after the resumed run: %d results, %d audit entries, counts %+v; want %d results and an entry per applied row",
			final.Results, final.Audit, final.progress, rows)
	}

	// Idle, one SIGINT stops it, and it says so.
	if !poll(30*time.Second, 20*time.Millisecond, func() bool { p, _ := r.job(); return p.State == "completed" }) {
		t.Fatal("job not completed within 30 s of its summary")
	}
	logFrom = logSize(t, r)
	sent = time.Now()
	if err := r.proc.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case exitErr = <-r.exit:
		r.proc = nil
	case <-time.After(10 * time.Second):
		t.Fatal("idle: still running 10 s after SIGINT")
	}
	t.Logf("idle: gone %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	if exitErr != nil {
		t.Errorf("idle stop: %v, want exit status 0", exitErr)
	}
	said = logSince(t, r, logFrom)
	for _, want := range []string{"lessee: stopping (no file is being processed)\n", "lessee: stopped cleanly\n", `"msg":"stopping: no file is being processed"`} {
		if !strings.Contains(said, want) {
			t.Errorf("idle stop: output lacks %q:\n%s", want, said)
		}
	}
}

// logSize is the length of the rig's log, to read what comes after.
func logSize(t *testing.T, r *rig) int {
	t.Helper()
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// logSince returns the rig's log (stdout and stderr) from offset on.
func logSince(t *testing.T, r *rig, offset int) string {
	t.Helper()
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, len(b)):])
}
