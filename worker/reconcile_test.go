package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// The demo fleet of 912345602 (examples/registry) has eleven vehicles; on
// any day from 2026-03-01 on, five of them have a lessee in force:
// EL10002, EL10003, EL10004, EL10006 and EL10009.
const demoFleet = "912345602"

// putBytes uploads data at key and returns the payload the scan would build.
func (b *testBundle) putBytes(t *testing.T, key string, data []byte) IngestPayload {
	t.Helper()
	ctx := context.Background()
	if err := b.objects.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	o, err := b.objects.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size,
		Version: intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)}}
}

// process runs the handler on an upload of data at key.
func (b *testBundle) process(t *testing.T, key string, data []byte) lessee.Job {
	t.Helper()
	p := b.putBytes(t, key, data)
	if err := b.handler.Process(context.Background(), p); err != nil {
		t.Fatalf("process %s: %v", key, err)
	}
	job, err := b.store.Job(context.Background(), intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// registryState is what a dry run must leave alone: every vehicle's
// periods, the audit log and the fleets' change counts (exports).
type registryState struct {
	Vehicles map[string][]lessee.Period
	Audit    int
	Exports  []sqlstore.DueExport
}

func readRegistry(t *testing.T, s *sqlstore.Store) registryState {
	t.Helper()
	ctx := context.Background()
	st := registryState{Vehicles: map[string][]lessee.Period{}}
	for i := 1; i <= 11; i++ {
		vin := fmt.Sprintf("WVWZZZ1KZAW%06d", i)
		v, err := s.Vehicle(ctx, vin)
		if err != nil {
			t.Fatal(err)
		}
		st.Vehicles[vin] = v.Periods
	}
	audit, err := s.Audit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	st.Audit = len(audit)
	later := time.Now().Add(time.Hour)
	if st.Exports, err = s.DueExports(ctx, later, later); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(st.Exports, func(a, b sqlstore.DueExport) int { return strings.Compare(a.OrgNr, b.OrgNr) })
	return st
}

// fleetVersion is the change count of a fleet in st.
func (st registryState) fleetVersion(orgnr string) int64 {
	for _, e := range st.Exports {
		if e.OrgNr == orgnr {
			return e.Version
		}
	}
	return 0
}

// receiptColumns drops the change_id column: a dry run hands out none.
func withoutChangeIDs(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r[:len(r)-1])
	}
	return out
}

// crossChunk does remove then add on one vehicle across a chunk boundary
// (chunks of 5 rows in these tests), and add then add again: a dry run must
// let later chunks see what earlier ones would have done.
const crossChunk = `operation,registration_number,lessee_id,start_date,end_date,reference
add,EL10001,12128822249,2026-01-01,,X-1
add,EL10005,02079123660,2026-01-01,,X-2
add,EL10007,17051743229,2026-01-01,,X-3
add,EL10008,45059010046,2026-01-01,,X-4
remove,EL10009,,,2026-01-31,X-5
add,EL10009,28026630179,2026-01-31,,X-6
add,EL10001,12128822249,2026-01-01,,X-7
add,EL10005,17051743229,2026-02-01,,X-8
remove,EL10007,,,2026-06-01,X-9
remove,EL10007,,,2026-06-01,X-10
add,EL10007,28026630179,2026-06-01,,X-11
`

// TestDryRunEqualsRealRun uploads files as dry runs, then for real: every
// row's status, code and message in the dry-run receipt equal the real
// run's, change ids apart, and the dry run changed nothing.
func TestDryRunEqualsRealRun(t *testing.T) {
	t.Parallel()
	allOutcomes, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"all-outcomes.csv", allOutcomes},
		{"cross-chunk.csv", []byte(crossChunk)},
	} {
		t.Run(strings.TrimSuffix(tc.name, ".csv"), func(t *testing.T) {
			t.Parallel()
			sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
				b := setup(t, store)
				before := readRegistry(t, store)
				dry := b.process(t, "dryrun/"+demoFleet+"/"+tc.name, tc.data)
				if !dry.DryRun || dry.Mode != lessee.ModeChanges || dry.State != lessee.JobCompleted {
					t.Fatalf("dry-run job = %+v", dry)
				}
				if after := readRegistry(t, store); !reflect.DeepEqual(after, before) {
					t.Fatalf("the dry run changed the registry:\n%+v\nwas\n%+v", after, before)
				}
				dryRows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/"+tc.name+".dryrun.receipt.csv"))
				for _, r := range dryRows {
					if r[len(r)-1] != "" {
						t.Errorf("dry-run row %s has change id %q", r[0], r[len(r)-1])
					}
				}
				var sum map[string]any
				if err := json.Unmarshal(b.get(t, "receipts/"+demoFleet+"/"+tc.name+".dryrun.summary.json"), &sum); err != nil {
					t.Fatal(err)
				}
				if sum["dry_run"] != true || sum["mode"] != "changes" {
					t.Errorf("dry-run summary: dry_run %v, mode %v", sum["dry_run"], sum["mode"])
				}
				if _, err := b.objects.Head(context.Background(), "dryrun/"+demoFleet+"/"+tc.name); err == nil {
					t.Error("the dry run's source is still under dryrun/")
				}
				if _, err := b.objects.Head(context.Background(), "archive/dryrun/"+demoFleet+"/"+tc.name); err != nil {
					t.Errorf("the dry run's source is not in archive/dryrun/: %v", err)
				}

				real := b.process(t, "inbox/"+demoFleet+"/"+tc.name, tc.data)
				realRows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/"+tc.name+".receipt.csv"))
				if got, want := withoutChangeIDs(dryRows), withoutChangeIDs(realRows); !reflect.DeepEqual(got, want) {
					t.Errorf("dry-run receipt differs from the real one:\n%q\nwant\n%q", got, want)
				}
				if real.Applied == 0 || real.Applied != dry.Applied || real.Rejected != dry.Rejected || real.Unchanged != dry.Unchanged {
					t.Errorf("counts: dry run %d/%d/%d, real %d/%d/%d", dry.Applied, dry.Unchanged, dry.Rejected,
						real.Applied, real.Unchanged, real.Rejected)
				}
				after := readRegistry(t, store)
				if after.Audit != before.Audit+real.Applied || after.fleetVersion(demoFleet) <= before.fleetVersion(demoFleet) {
					t.Errorf("the real run: %d audit entries (was %d, applied %d), fleet change count %d (was %d)",
						after.Audit, before.Audit, real.Applied, after.fleetVersion(demoFleet), before.fleetVersion(demoFleet))
				}
			})
		})
	}
}

// demoSnapshot states the demo fleet: one row of each derived operation,
// a vehicle named twice, an add without its start date, and a row whose
// lessee id is wrong but whose vehicle is named all the same. EL10009,
// with a lessee, is left out: one removal of the five lessees in force,
// 20% of them.
const demoSnapshot = `registration_number,vin,lessee_id,lessee_name,start_date,reference,operation
EL10001,,12128822249,Kari Nordmann,2026-11-01,S-1,ignored
EL10002,,15038512363,,,S-2,
EL10003,,17051743229,,2026-11-01,S-3,
EL10004,,,,,S-4,
EL10005,,,,,S-5,
EL10006,,05050051288,,,S-6,
,WVWZZZ1KZAW000002,15038512363,,,S-7,
EL10007,,17051743229,,,S-8,
EL10008,,,,,S-9,
EL10010,,,,,S-10,
EL10011,,,,,S-11,
`

// snapshotWant is each row's row, operation, status and code.
var snapshotWant = [][4]string{
	{"2", "add", "applied", ""},
	{"3", "keep", "unchanged", ""},
	{"4", "replace", "applied", ""},
	{"5", "remove", "applied", ""},
	{"6", "keep", "unchanged", ""},
	{"7", "", "rejected", "INVALID_LESSEE_ID"},
	{"8", "", "rejected", "DUPLICATE_VEHICLE"},
	{"9", "add", "rejected", "MISSING_FIELD"},
	{"10", "keep", "unchanged", ""},
	{"11", "keep", "unchanged", ""},
	{"12", "keep", "unchanged", ""},
	{"", "remove", "applied", ""}, // EL10009, absent from the file
}

// checkSnapshotReceipt compares a snapshot receipt's rows with want.
func checkSnapshotReceipt(t *testing.T, rows [][]string, want [][4]string) {
	t.Helper()
	if len(rows) != len(want) {
		t.Fatalf("receipt has %d rows, want %d:\n%q", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		// row, reference, operation, registration_number, vin, lessee, status, code, message, change_id
		if got := [4]string{r[0], r[2], r[6], r[7]}; got != w && !(w[1] == "" && got[0] == w[0] && got[2] == w[2] && got[3] == w[3]) {
			t.Errorf("receipt line %d: row %q operation %q status %q code %q, want %q (%s)", i+1, r[0], r[2], r[6], r[7], w, r[8])
		}
	}
}

func TestSnapshotDerivedOperations(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		b := setup(t, store)
		b.handler.cfg.SnapshotMaxRemovals = 25
		job := b.process(t, "snapshot/"+demoFleet+"/fleet.csv", []byte(demoSnapshot))
		if job.Mode != lessee.ModeSnapshot || job.DryRun || job.State != lessee.JobCompleted {
			t.Fatalf("job = %+v", job)
		}
		if job.FileRows != 11 || job.RowsTotal != 12 {
			t.Errorf("file rows %d, rows total %d; want 11 and 12 (one absent vehicle)", job.FileRows, job.RowsTotal)
		}
		rows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.receipt.csv"))
		checkSnapshotReceipt(t, rows, snapshotWant)
		if last := rows[len(rows)-1]; last[3] != "EL10009" || last[4] != "WVWZZZ1KZAW000009" {
			t.Errorf("the absent vehicle's line names %s %s, want EL10009", last[3], last[4])
		}
		wantOps := map[lessee.Operation]int{lessee.OpAdd: 2, lessee.OpKeep: 5, lessee.OpReplace: 1, lessee.OpRemove: 2}
		if !reflect.DeepEqual(job.Operations, wantOps) {
			t.Errorf("operations %v, want %v", job.Operations, wantOps)
		}
		var sum map[string]any
		if err := json.Unmarshal(b.get(t, "receipts/"+demoFleet+"/fleet.csv.summary.json"), &sum); err != nil {
			t.Fatal(err)
		}
		if sum["mode"] != "snapshot" || sum["operations"] == nil {
			t.Errorf("summary mode %v, operations %v", sum["mode"], sum["operations"])
		}
		if cols, _ := sum["ignored_columns"].([]any); !slices.Contains(cols, any("operation")) {
			t.Errorf("summary ignored_columns %v do not list operation", sum["ignored_columns"])
		}

		today := job.ProcessingDate
		periods := func(vin string) []lessee.Period {
			v, err := store.Vehicle(ctx, vin)
			if err != nil {
				t.Fatal(err)
			}
			return v.Periods
		}
		check := func(vin string, want ...string) {
			t.Helper()
			var got []string
			for _, p := range periods(vin) {
				got = append(got, fmt.Sprintf("%s %s-%s", p.LesseeID, p.Start, p.End))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s periods %q, want %q", vin, got, want)
			}
		}
		check("WVWZZZ1KZAW000001", "12128822249 2026-11-01-")
		check("WVWZZZ1KZAW000002", "15038512363 2025-01-01-")
		check("WVWZZZ1KZAW000003", "02079123660 2025-06-01-2026-11-01", "17051743229 2026-11-01-")
		check("WVWZZZ1KZAW000004", "24126834558 2024-03-01-"+string(today))
		check("WVWZZZ1KZAW000006", "05050051287 2025-02-01-") // named by a rejected row: kept
		check("WVWZZZ1KZAW000009", "31129940134 2024-01-01-"+string(today))
		audit, err := store.Audit(ctx, "WVWZZZ1KZAW000003")
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Operation != "replace" {
			t.Errorf("the replace is audited as %+v, want one replace entry", audit)
		}
		if _, err := b.objects.Head(ctx, "archive/snapshot/"+demoFleet+"/fleet.csv"); err != nil {
			t.Errorf("the snapshot is not in archive/snapshot/: %v", err)
		}

		// The same snapshot again: every vehicle is as it states, and the
		// left-out one has no lessee any more.
		again := b.process(t, "snapshot/"+demoFleet+"/again.csv", []byte(demoSnapshot))
		if again.Applied != 0 || again.RowsTotal != 11 {
			t.Errorf("the same snapshot again applied %d of %d rows, want 0 of 11", again.Applied, again.RowsTotal)
		}
	})
}

func TestSnapshotTooManyRemovals(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		b := setup(t, store) // the default limit: 10%
		before := readRegistry(t, store)
		for _, prefix := range []string{"dryrun-snapshot/", "snapshot/"} {
			job := b.process(t, prefix+demoFleet+"/fleet.csv", []byte(demoSnapshot))
			if job.State != lessee.JobRefused || job.Code != lessee.CodeTooManyRemovals {
				t.Fatalf("%s: job %s %s, want refused TOO_MANY_REMOVALS", prefix, job.State, job.Code)
			}
			if after := readRegistry(t, store); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s: a refused snapshot changed the registry", prefix)
			}
		}
		real := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.receipt.csv"))
		dry := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.dryrun.receipt.csv"))
		if !reflect.DeepEqual(real, dry) {
			t.Errorf("dry-run refusal differs from the real one:\n%q\n%q", dry, real)
		}
		// The refusal, then the vehicle whose lessee it would have removed.
		if len(real) != 2 || real[0][7] != "TOO_MANY_REMOVALS" || real[1][3] != "EL10009" || real[1][0] != "" {
			t.Errorf("receipt %q: want the refusal and EL10009", real)
		} else if !strings.Contains(real[0][8], "1 of the 5") {
			t.Errorf("refusal message %q does not say 1 of the 5", real[0][8])
		}
		if _, err := b.objects.Head(ctx, "failed/snapshot/"+demoFleet+"/fleet.csv"); err != nil {
			t.Errorf("the refused snapshot is not in failed/snapshot/: %v", err)
		}
	})
}

func TestSnapshotDryRunEqualsRealRun(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		b := setup(t, store)
		b.handler.cfg.SnapshotMaxRemovals = 25
		before := readRegistry(t, store)
		dry := b.process(t, "dryrun-snapshot/"+demoFleet+"/fleet.csv", []byte(demoSnapshot))
		if !dry.DryRun || dry.Mode != lessee.ModeSnapshot {
			t.Fatalf("job = %+v", dry)
		}
		if after := readRegistry(t, store); !reflect.DeepEqual(after, before) {
			t.Fatalf("the dry run changed the registry:\n%+v\nwas\n%+v", after, before)
		}
		b.process(t, "snapshot/"+demoFleet+"/fleet.csv", []byte(demoSnapshot))
		dryRows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.dryrun.receipt.csv"))
		realRows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.receipt.csv"))
		checkSnapshotReceipt(t, dryRows, snapshotWant)
		if got, want := withoutChangeIDs(dryRows), withoutChangeIDs(realRows); !reflect.DeepEqual(got, want) {
			t.Errorf("dry-run receipt differs from the real one:\n%q\nwant\n%q", got, want)
		}
	})
}

// TestSnapshotResumes stops a snapshot after every possible number of
// committed chunks (the file's rows in chunks of 5, then the absent
// vehicle's removal) and retries it: each ends with the registry and
// receipt of an uninterrupted run.
func TestSnapshotResumes(t *testing.T) {
	t.Parallel()
	type outcome struct {
		Receipt  [][]string
		Vehicles map[string][]string
		Audit    int
	}
	run := func(t *testing.T, failAfterChunks int) outcome {
		store := sqlstoretest.SQLite(t)
		b := setup(t, store)
		b.handler.cfg.SnapshotMaxRemovals = 25
		p := b.putBytes(t, "snapshot/"+demoFleet+"/fleet.csv", []byte(demoSnapshot))
		if failAfterChunks >= 0 {
			b.handler.store = &failAfter{Store: store, chunks: failAfterChunks}
			if err := b.handler.Process(context.Background(), p); err == nil {
				t.Fatalf("no failure after %d chunks", failAfterChunks)
			}
			b.handler.store = store
		}
		if err := b.handler.Process(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		st := readRegistry(t, store)
		o := outcome{Receipt: withoutChangeIDs(receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.receipt.csv"))),
			Vehicles: map[string][]string{}, Audit: st.Audit}
		for vin, ps := range st.Vehicles {
			for _, p := range ps {
				o.Vehicles[vin] = append(o.Vehicles[vin], fmt.Sprintf("%s %s-%s", p.LesseeID, p.Start, p.End))
			}
		}
		return o
	}
	want := run(t, -1)
	for k := 0; k <= 2; k++ {
		t.Run(fmt.Sprintf("after%dchunks", k), func(t *testing.T) {
			t.Parallel()
			if got := run(t, k); !reflect.DeepEqual(got, want) {
				t.Errorf("resumed run differs:\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestSnapshotMixedFleetOwners(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstoretest.SQLite(t))
	const file = `registration_number,lessee_id,on_behalf_of
EL10002,15038512363,
FJ20001,,912345610
`
	job := b.process(t, "snapshot/"+demoFleet+"/mixed.csv", []byte(file))
	if job.State != lessee.JobRefused || job.Code != lessee.CodeMixedFleetOwners || !strings.Contains(job.Message, "row 3") {
		t.Errorf("job %s %s %q, want refused MIXED_FLEET_OWNERS naming row 3", job.State, job.Code, job.Message)
	}
}

// TestSnapshotForeignFleet: a snapshot for a fleet the submitter may not
// act for removes nothing and shows nothing of that fleet: no absent
// vehicle is listed, however many the file leaves out, and every row is
// rejected with the authority code.
func TestSnapshotForeignFleet(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		b := setup(t, store)
		before := readRegistry(t, store)
		for _, tc := range []struct{ submitter, file, code string }{
			// Another fleet owner, naming the demo fleet's vehicle as its own.
			{"912345610", "registration_number,lessee_id\nEL10002,15038512363\n", "NOT_OWNER"},
			// A company without the third-party agreement, on behalf of it.
			{"912345645", "registration_number,lessee_id,on_behalf_of\nEL10002,15038512363,912345602\n", "TERMS_NOT_ACCEPTED"},
			// A third party whose delegation from 912345610 has expired.
			{"912345629", "registration_number,lessee_id,on_behalf_of\nFJ20001,,912345610\n", "DELEGATION_EXPIRED"},
		} {
			for _, prefix := range []string{"dryrun-snapshot/", "snapshot/"} {
				job := b.process(t, prefix+tc.submitter+"/fleet.csv", []byte(tc.file))
				if job.State != lessee.JobCompleted || job.RowsTotal != 1 || job.Rejected != 1 || job.Codes[lessee.Code(tc.code)] != 1 {
					t.Errorf("%s%s: job %s, %d rows, %d rejected, codes %v; want one row rejected %s",
						prefix, tc.submitter, job.State, job.RowsTotal, job.Rejected, job.Codes, tc.code)
				}
			}
		}
		if after := readRegistry(t, store); !reflect.DeepEqual(after.Vehicles, before.Vehicles) {
			t.Error("a snapshot for a foreign fleet changed the registry")
		}
	})
}

// TestGeneratedSnapshot runs a generated snapshot of a generated fleet and
// checks every line against the operation the generator meant: each row's
// reference names it, and the vehicles left out are removed after them.
// Then the fleet's export, uploaded as a snapshot, is all keep.
func TestGeneratedSnapshot(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		b := setup(t, store)
		b.handler.cfg.ChunkSize = 100
		dir := t.TempDir()
		reg, err := gen.WriteRegistry(dir, gen.RegistryConfig{Seed: 7, Enterprises: 6, Vehicles: 3000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		fleet := reg.LargestFleet()
		var file bytes.Buffer
		stats, err := gen.WriteSnapshot(&file, reg, gen.SnapshotConfig{Seed: 7, FleetOwner: fleet})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("fleet %s: %d rows, %d left out, %d duplicates, operations %v", fleet, stats.Rows, stats.LeftOut, stats.Duplicates, stats.Operations)
		job := b.process(t, "snapshot/"+fleet+"/fleet.csv", file.Bytes())
		if job.State != lessee.JobCompleted || job.RowsTotal != stats.Rows+stats.LeftOut {
			t.Fatalf("job %s %s %q, %d rows; want completed, %d rows", job.State, job.Code, job.Message, job.RowsTotal, stats.Rows+stats.LeftOut)
		}
		if !reflect.DeepEqual(job.Operations, stats.Operations) {
			t.Errorf("operations %v, want %v", job.Operations, stats.Operations)
		}
		rows := receiptRows(t, b.get(t, "receipts/"+fleet+"/fleet.csv.receipt.csv"))
		wantStatus := map[string]string{"keep": "unchanged", "add": "applied", "replace": "applied", "remove": "applied"}
		absent := 0
		for _, r := range rows {
			if r[0] == "" {
				absent++
				if r[2] != "remove" || r[6] != "applied" {
					t.Errorf("absent vehicle %s: %s %s %s", r[3], r[2], r[6], r[7])
				}
				continue
			}
			_, intent, _ := strings.Cut(r[1], "-")
			if intent == "duplicate" {
				if r[7] != "DUPLICATE_VEHICLE" {
					t.Errorf("row %s meant as a duplicate: %s %s", r[0], r[6], r[7])
				}
				continue
			}
			if r[2] != intent || r[6] != wantStatus[intent] {
				t.Errorf("row %s meant %s: got %s %s %s %s", r[0], intent, r[2], r[6], r[7], r[8])
			}
		}
		if absent != stats.LeftOut {
			t.Errorf("%d absent-vehicle lines, want %d", absent, stats.LeftOut)
		}

		// The export of the fleet as it now stands, as a snapshot: all keep.
		w := export.New(store, b.objects, export.Config{TempDir: t.TempDir()})
		if _, err := w.Write(ctx, fleet); err != nil {
			t.Fatal(err)
		}
		exported := b.get(t, "exports/"+fleet+"/fleet.csv")
		again := b.process(t, "snapshot/"+fleet+"/exported.csv", exported)
		if again.State != lessee.JobCompleted || again.Applied != 0 || again.Rejected != 0 ||
			again.Operations[lessee.OpKeep] != again.RowsTotal || again.RowsTotal == 0 {
			t.Errorf("the export as a snapshot: %s, %d rows, %d applied, %d rejected, operations %v; want all keep",
				again.State, again.RowsTotal, again.Applied, again.Rejected, again.Operations)
		}
	})
}

// TestSnapshotResumesWithItsFrozenList: the file's rows are applied, then
// the attempt fails; before the retry the fleet owner loses its role. The
// retry keeps the list of absent vehicles frozen before the first chunk
// (and the job's row count): their removals are decided like any row, and
// rejected now, rather than silently dropped.
func TestSnapshotResumesWithItsFrozenList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	b := setup(t, store)
	b.handler.cfg.SnapshotMaxRemovals = 25
	p := b.putBytes(t, "snapshot/"+demoFleet+"/fleet.csv", []byte(demoSnapshot))
	b.handler.store = &failAfter{Store: store, chunks: 3} // the file's 11 rows, in chunks of 5
	if err := b.handler.Process(ctx, p); err == nil {
		t.Fatal("no failure after the file's rows")
	}
	b.handler.store = store
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "enterprises.csv"), []byte("orgnr,name,fleet_owner\n"+demoFleet+",Nordlys Leasing AS,false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil {
		t.Fatal(err)
	}
	if job.State != lessee.JobCompleted || job.RowsTotal != 12 || job.RowsDone != 12 {
		t.Fatalf("job %s, %d of %d rows; want completed, 12 of 12", job.State, job.RowsDone, job.RowsTotal)
	}
	rows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/fleet.csv.receipt.csv"))
	if last := rows[len(rows)-1]; last[0] != "" || last[3] != "EL10009" || last[7] != "NOT_FLEET_OWNER" {
		t.Errorf("the absent vehicle's line: %q; want EL10009 rejected NOT_FLEET_OWNER", last)
	}
}

// TestXLSXSnapshot: a snapshot sent as a workbook, with Norwegian headers
// and a date cell, as a dry run and for real: both get CSV and XLSX
// receipts under their own names, the XLSX one with the standard columns
// and the derived operations, and the absent vehicle's line without a row.
func TestXLSXSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstoretest.SQLite(t))
	b.handler.cfg.SnapshotMaxRemovals = 25
	build := func(f *excelize.File) {
		sheetRow(t, f, 1, "Kjennemerke", "Leietaker", "Fra dato", "Referanse")
		start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		sheetRow(t, f, 2, "EL10001", "12128822249", start, "X-1")
		for i, reg := range []string{"EL10002", "EL10003", "EL10004", "EL10006", "EL10005", "EL10007", "EL10008", "EL10010", "EL10011"} {
			id := map[string]string{"EL10002": "15038512363", "EL10003": "02079123660", "EL10004": "24126834558", "EL10006": "05050051287"}[reg]
			sheetRow(t, f, 3+i, reg, id, "", fmt.Sprintf("X-%d", i+2))
		}
		// A date cell: the style makes Excel store a serial number.
		style, err := f.NewStyle(&excelize.Style{NumFmt: 14})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.SetCellStyle("Sheet1", "C2", "C2", style); err != nil {
			t.Fatal(err)
		}
	}
	for _, prefix := range []string{"dryrun-snapshot/", "snapshot/"} {
		p := b.putWorkbook(t, prefix+demoFleet+"/fleet.xlsx", build)
		if err := b.handler.Process(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, base := range []string{"fleet.xlsx.dryrun", "fleet.xlsx"} {
		rows := receiptRows(t, b.get(t, "receipts/"+demoFleet+"/"+base+".receipt.csv"))
		_, xrows := openXLSXReceipt(t, b.get(t, "receipts/"+demoFleet+"/"+base+".receipt.xlsx"))
		if len(rows) != 11 || len(xrows) != 12 {
			t.Fatalf("%s: %d CSV lines, %d XLSX rows; want 11 and a header plus 11", base, len(rows), len(xrows))
		}
		if rows[0][2] != "add" || rows[0][6] != "applied" || rows[1][2] != "keep" {
			t.Errorf("%s: first lines %q", base, rows[:2])
		}
		last := rows[len(rows)-1]
		if last[0] != "" || last[3] != "EL10009" || last[2] != "remove" || last[6] != "applied" {
			t.Errorf("%s: absent line %q", base, last)
		}
		if x := pad(xrows[len(xrows)-1], 3); x[0] != "" || x[2] != "remove" {
			t.Errorf("%s: XLSX absent line %q", base, x)
		}
	}
}
