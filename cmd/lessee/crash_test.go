package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// killPhase names when a kill point fires.
type killPhase int

const (
	afterStart       killPhase = iota // delay after the process started
	atCheckpoint                      // the checkpoint reached rows and moved since the start
	allRowsApplied                    // this process committed the last chunk
	buildingReceipt                   // this process began writing the receipt file
	uploadingReceipt                  // ... and the S3 endpoint is receiving a body
)

// killPoint is a moment to kill the worker at.
type killPoint struct {
	name  string
	phase killPhase
	rows  int           // for atCheckpoint
	delay time.Duration // then wait this long
}

// TestCrashRecoveryExactlyOnce is the crash test of the exactly-once
// guarantee: it runs the real `lessee serve` binary against PostgreSQL and
// Redis, uploads a generated change file of 100,000 rows (LESSEE_CRASH_ROWS),
// kills the process with SIGKILL at seeded random moments (LESSEE_CRASH_SEED)
// from upload to receipt, restarts it each time, and compares what the file
// left behind with an uninterrupted run of the same file on a fresh schema
// and data directory: the receipt rows byte for byte, the lessee periods,
// the audit log as a set, and the summary counts.
//
// Recovery alternates between the two ways a restarted worker finds its
// file again: with Redis lost (the database is flushed; the inbox scan
// re-enqueues the file) and with Redis intact (the task's lease is moved
// into the past, as 30 s of waiting would, so Asynq's recoverer in the new
// process hands it back, and the retry is run at once as an operator would
// from asynqmon instead of after the backoff). Job ids derive from the
// object version, so the two runs' ids differ and are replaced by "JOB"
// before comparing.
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	rows := envInt(t, "LESSEE_CRASH_ROWS", 100000)
	testCrashRecovery(t, crashCase{
		source: "inbox/", vehicles: 20000, midKills: 7, minKills: 10,
		write: func(w io.Writer, reg gen.Registry, submitter string, seed int64) (int, error) {
			return rows, gen.WriteChanges(w, reg, gen.ChangesConfig{Seed: seed, Rows: rows, Submitter: submitter})
		},
		intent: intentMismatches,
	})
}

// TestSnapshotCrashRecovery is the crash test for a snapshot of the
// largest fleet of a generated registry of 60,000 vehicles: SIGKILLs while
// its first pass records the vehicles it names, mid-file, once the file's
// rows are all applied and the absent vehicles' removals run, and in the
// receipt phase all end in the state and receipt of an uninterrupted run.
func TestSnapshotCrashRecovery(t *testing.T) {
	testCrashRecovery(t, crashCase{
		source: "snapshot/", vehicles: 60000, midKills: 4, minKills: 7,
		write: func(w io.Writer, reg gen.Registry, submitter string, seed int64) (int, error) {
			// 40% of the leased vehicles left out, under a limit of 50%:
			// several chunks of removals after the file's rows, to kill in.
			stats, err := gen.WriteSnapshot(w, reg, gen.SnapshotConfig{Seed: seed, FleetOwner: submitter, LeaveOut: 0.4})
			return stats.Rows + stats.LeftOut, err
		},
		intent:    snapshotIntentMismatches,
		absents:   true,
		serveArgs: []string{"--snapshot-max-removals", "50"},
	})
}

// crashCase is one kind of file the crash test runs.
type crashCase struct {
	source             string // upload prefix
	vehicles           int    // of the generated registry
	midKills, minKills int    // kills at random checkpoints; kills that must land
	// write writes the file for submitter's fleet and returns how many
	// receipt lines it should get.
	write  func(w io.Writer, reg gen.Registry, submitter string, seed int64) (int, error)
	intent func(t *testing.T, receiptRows []byte) (n int, first string)
	// absents adds a kill once the file's own rows are applied, while the
	// vehicles it left out are removed.
	absents bool
	// serveArgs are more flags for `lessee serve`.
	serveArgs []string
}

func testCrashRecovery(t *testing.T, cc crashCase) {
	if testing.Short() {
		t.Skip("crash test skipped with -short")
	}
	crashURL, redisURL := realServices(t)
	refURL := sqlstoretest.PostgresURL(t)
	seed := envInt(t, "LESSEE_CRASH_SEED", 1)
	const chunk = 500
	begin := time.Now()
	bin := buildLessee(t)

	// One registry and one file for both runs.
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: int64(seed), Enterprises: 30, Vehicles: cc.vehicles})
	if err != nil {
		t.Fatal(err)
	}
	submitter, name := reg.LargestFleet(), "fleet.csv"
	file := filepath.Join(dir, name)
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := cc.write(f, reg, submitter, int64(seed))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	key := cc.source + submitter + "/" + name
	summaryKey, receiptKey := "receipts/"+submitter+"/"+name+".summary.json", "receipts/"+submitter+"/"+name+".receipt.csv"
	archived := "archive/" + submitter + "/" + name
	if cc.source != "inbox/" {
		archived = "archive/" + cc.source + submitter + "/" + name
	}

	// The uninterrupted run, timed to place the kills.
	ref := newRig(t, bin, refURL, redisURL, chunk)
	ref.args = cc.serveArgs
	ref.importRegistry(regDir)
	ref.start()
	refStart := time.Now()
	ref.upload(key, file)
	var firstRow, allRows time.Time
	if !poll(5*time.Minute, 10*time.Millisecond, func() bool {
		p, ok := ref.job()
		switch {
		case !ok:
		case firstRow.IsZero() && p.RowsDone > 0:
			firstRow = time.Now()
		case allRows.IsZero() && p.RowsTotal > 0 && p.RowsDone == p.RowsTotal:
			allRows = time.Now()
		case !allRows.IsZero():
			return ref.object(summaryKey) != nil
		}
		return false
	}) {
		t.Fatal("uninterrupted run: no summary within 5 minutes")
	}
	refDone := time.Now()
	want := ref.collect(submitter, name)
	ref.stop()
	applyDur, receiptDur := allRows.Sub(firstRow), refDone.Sub(allRows)
	t.Logf("uninterrupted run: %d rows in %s (first row after %s, rows applied in %s, receipt in %s)",
		rows, refDone.Sub(refStart).Round(time.Millisecond), firstRow.Sub(refStart).Round(time.Millisecond),
		applyDur.Round(time.Millisecond), receiptDur.Round(time.Millisecond))
	if n, first := cc.intent(t, want.receiptRows); n > 0 {
		t.Errorf("uninterrupted run: %d rows differ from the generator's intent, first: %s", n, first)
	}
	if want.summary["rows"] != float64(rows) {
		t.Fatalf("uninterrupted run: summary rows = %v, want %d", want.summary["rows"], rows)
	}

	// The kill plan: while the upload is first seen, mid-file at random
	// checkpoints with a random delay under one chunk's time (so mostly
	// inside a chunk), while a restarted process downloads and re-reads
	// the file, and in the receipt phase.
	rng := rand.New(rand.NewPCG(uint64(seed), 4))
	chunkDur := applyDur / time.Duration(max(rows/chunk, 1))
	jitter := func(d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max(d, time.Millisecond)))) }
	plan := []killPoint{{"upload seen", afterStart, 0, jitter(500 * time.Millisecond)}}
	// A snapshot's last lines are the vehicles it left out, removed after
	// its own rows: mid-file kills fall among the file's rows, and one
	// more comes among the removals.
	absent := 0
	if cc.absents {
		for _, l := range bytes.Split(want.receiptRows, []byte("\n")) {
			if bytes.HasPrefix(l, []byte(",")) {
				absent++
			}
		}
	}
	fileRows := rows - absent
	var marks []int
	for range cc.midKills {
		marks = append(marks, fileRows/50+rng.IntN(fileRows*90/100))
	}
	slices.Sort(marks)
	for i, m := range marks {
		plan = append(plan, killPoint{"mid-file", atCheckpoint, m, jitter(chunkDur)})
		if i == 3 {
			plan = append(plan, killPoint{"resuming", afterStart, 0, jitter(time.Second)})
		}
	}
	if cc.absents {
		// Once the first chunk of removals has committed.
		plan = append(plan, killPoint{"removing absent", atCheckpoint, fileRows + 1, jitter(chunkDur)})
	}
	plan = append(plan,
		killPoint{"last chunk committed", allRowsApplied, 0, 0},
		killPoint{"building receipt", buildingReceipt, 0, jitter(receiptDur / 3)},
		killPoint{"uploading receipt", uploadingReceipt, 0, 0},
	)

	// The crash run.
	crash := newRig(t, bin, crashURL, redisURL, chunk)
	crash.args = cc.serveArgs
	crash.importRegistry(regDir)
	crash.start()
	crashStart := time.Now()
	tl := &timeline{start: crashStart}
	crash.upload(key, file)
	kills := 0
	for i, kp := range plan {
		base := 0
		if p, ok := crash.job(); ok {
			base = p.RowsDone
		}
		staleReceipts := crash.receiptFiles()
		building := func() bool {
			for f := range crash.receiptFiles() {
				if !staleReceipts[f] {
					return true
				}
			}
			return false
		}
		lastRun, finished := time.Now(), false
		reached := poll(3*time.Minute, 2*time.Millisecond, func() bool {
			if err := crash.exited(); err != nil {
				t.Fatalf("lessee serve exited by itself: %v", err)
			}
			if time.Since(lastRun) > 100*time.Millisecond {
				crash.runRetries()
				lastRun = time.Now()
				// A restarted process may finish the file before this
				// point comes (a kill landed after the last chunk, say):
				// then no later point can come.
				if crash.object(summaryKey) != nil {
					finished = true
					return true
				}
			}
			switch kp.phase {
			case afterStart:
				return true
			case buildingReceipt:
				return building()
			case uploadingReceipt:
				return building() && crash.receiving()
			}
			p, ok := crash.job()
			switch {
			case !ok:
				return false
			case kp.phase == allRowsApplied:
				return p.RowsTotal > 0 && p.RowsDone == p.RowsTotal && p.RowsDone > base
			}
			return p.RowsDone >= max(kp.rows, base+1)
		})
		if !reached {
			t.Fatalf("kill %d (%s): not reached within 3 minutes", i+1, kp.name)
		}
		if finished {
			tl.mark("summary published before kill %d (%s)", i+1, kp.name)
			break
		}
		time.Sleep(kp.delay)
		crash.kill()
		a := crash.afterKill()
		p := a.progress
		done := crash.object(summaryKey) != nil
		tl.mark("kill %2d %-20s rows_done %6d/%d state %s%s", i+1, kp.name, p.RowsDone, p.RowsTotal, p.State,
			map[bool]string{true: " (after the summary)", false: ""}[done])
		if !done {
			kills++
		}

		// What a crash may leave: the checkpoint equals the stored results,
		// the counts add up, and a receipt is complete or absent.
		if a.Results != p.RowsDone {
			t.Errorf("after kill %d: %d stored results, checkpoint %d", i+1, a.Results, p.RowsDone)
		}
		if a.Audit != p.Applied {
			t.Errorf("after kill %d: %d audit entries, %d applied", i+1, a.Audit, p.Applied)
		}
		if p.Applied+p.Unchanged+p.Rejected != p.RowsDone {
			t.Errorf("after kill %d: counts %+v do not add up", i+1, p)
		}
		if b := crash.object(receiptKey); b != nil {
			if got := receiptRows(t, []byte(replaceJob(string(b), p.ID))); string(got) != string(want.receiptRows) {
				t.Errorf("after kill %d: a receipt that differs from the uninterrupted run's is in place", i+1)
			}
		}
		if done {
			break
		}

		if i%2 == 0 {
			if err := crash.redis.FlushDB(t.Context()).Err(); err != nil {
				t.Fatalf("flush redis: %v", err)
			}
			tl.mark("redis flushed; the inbox scan must find the file again")
		} else {
			crash.expireLeases()
		}
		crash.start()
		tl.mark("restarted")
	}
	lastRun := time.Now()
	if !poll(3*time.Minute, 10*time.Millisecond, func() bool {
		if time.Since(lastRun) > 100*time.Millisecond {
			crash.runRetries()
			lastRun = time.Now()
		}
		return crash.object(summaryKey) != nil
	}) {
		t.Fatal("crash run: no summary within 3 minutes after the last restart")
	}
	tl.mark("summary published")
	if !poll(30*time.Second, 20*time.Millisecond, func() bool {
		p, _ := crash.job()
		return p.State == "completed" && crash.object(key) == nil && crash.object(archived) != nil
	}) {
		t.Error("crash run: job not completed with its source moved to archive/ within 30 s")
	}
	tl.mark("source archived")
	crashDone := time.Now()
	got := crash.collect(submitter, name)
	crash.stop()
	for _, m := range tl.marks {
		t.Log(m)
	}
	t.Logf("crash run: %d kills before the summary, %s; whole test %s",
		kills, crashDone.Sub(crashStart).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	// A killed worker cannot remove its temporary files; report what
	// the crashes left (a restart does not clean them up).
	if left, err := filepath.Glob(filepath.Join(crash.data, "tmp", "lessee-*")); err == nil {
		var size int64
		for _, f := range left {
			if st, err := os.Stat(f); err == nil {
				size += st.Size()
			}
		}
		t.Logf("temporary files left in the data directory by the crashes: %d, %.1f MiB", len(left), float64(size)/(1<<20))
	}
	for _, r := range []*rig{ref, crash} {
		b, err := os.ReadFile(r.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if loc := regexp.MustCompile(`\b\d{11}\b`).FindIndex(b); loc != nil {
			// The context, with the number itself masked, says which log
			// line leaked it.
			from, to := max(loc[0]-120, 0), min(loc[1]+40, len(b))
			t.Errorf("the service log holds an unmasked 11-digit number ending %s: …%s*********%s%s…",
				b[loc[1]-2:loc[1]], b[from:loc[0]], b[loc[1]-2:loc[1]], b[loc[1]:to])
		}
	}
	if kills < cc.minKills {
		t.Errorf("only %d kills landed before the summary, want at least %d", kills, cc.minKills)
	}
	compareOutcomes(t, got, want)
}

func replaceJob(s, jobID string) string {
	if jobID == "" {
		return s
	}
	return strings.ReplaceAll(s, jobID, "JOB")
}
