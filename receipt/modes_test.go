package receipt

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// snapshotResults are a snapshot's results: two rows of the file, then the
// removal of a vehicle the file left out, which has no row (Line 0).
var snapshotResults = []lessee.Result{
	{Index: 0, Line: 2, Echo: lessee.Echo{Operation: "keep", RegistrationNumber: "EL10001"}, Status: lessee.StatusUnchanged, Message: "lessee already registered"},
	{Index: 1, Line: 3, Echo: lessee.Echo{Operation: "replace", RegistrationNumber: "EL10002", Lessee: "912345629"}, Status: lessee.StatusApplied, Message: "lessee replaced", ChangeID: "j2-1"},
	{Index: 2, Line: 0, Echo: lessee.Echo{Operation: "remove", RegistrationNumber: "EL10003"}, Status: lessee.StatusApplied, Message: "vehicle absent from the snapshot: lessee removed", ChangeID: "j2-2"},
}

func writeAll(rs []lessee.Result) func(*Lines) error {
	return func(w *Lines) error {
		for _, r := range rs {
			if err := w.Write(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func csvRecords(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestCSVWriterEmptyRowForLineZero(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range snapshotResults {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := csvRecords(t, buf.Bytes())
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4", len(recs))
	}
	if recs[1][0] != "2" || recs[2][0] != "3" {
		t.Errorf("file rows numbered %q, %q; want 2, 3", recs[1][0], recs[2][0])
	}
	if got := strings.Join(recs[3], ","); got != ",,remove,EL10003,,,applied,,vehicle absent from the snapshot: lessee removed,j2-2" {
		t.Errorf("absent-vehicle removal = %s; want an empty row cell", got)
	}
}

func TestXLSXWriterEmptyRowForLineZero(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	err := WriteXLSXReceipt(&buf, XLSXOptions{}, func(yield func(lessee.Result) error) error {
		for _, r := range snapshotResults {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, rows := openReceipt(t, buf.Bytes())
	if len(rows) != 4 || rows[1][0] != "2" || rows[3][0] != "" || rows[3][2] != "remove" || rows[3][3] != "EL10003" {
		t.Fatalf("rows = %q; want the absent-vehicle removal last with an empty row cell", rows)
	}
	checkTextCells(t, f, rows) // the empty row cell is an empty string, not a blank
}

func TestSummaryModes(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := lessee.Job{ID: "j", Key: "inbox/923609016/a.csv", State: lessee.JobCompleted, Applied: 1, Started: start}
	for _, tc := range []struct {
		name       string
		mode       lessee.Mode
		dryRun     bool
		ops        map[lessee.Operation]int
		wantMode   string
		wantDryRun bool
		wantOps    map[string]float64 // nil: no "operations" key
	}{
		{name: "LegacyEmptyMode", wantMode: "changes"},
		{name: "Changes", mode: lessee.ModeChanges, wantMode: "changes"},
		{name: "ChangesDryRun", mode: lessee.ModeChanges, dryRun: true, wantMode: "changes", wantDryRun: true},
		{name: "Snapshot", mode: lessee.ModeSnapshot, ops: map[lessee.Operation]int{lessee.OpKeep: 5, lessee.OpRemove: 2},
			wantMode: "snapshot", wantOps: map[string]float64{"keep": 5, "add": 0, "replace": 0, "remove": 2}},
		{name: "SnapshotDryRunNoOperations", mode: lessee.ModeSnapshot, dryRun: true,
			wantMode: "snapshot", wantDryRun: true, wantOps: map[string]float64{"keep": 0, "add": 0, "replace": 0, "remove": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := base
			job.Mode, job.DryRun, job.Operations = tc.mode, tc.dryRun, tc.ops
			b, err := NewSummary(job, start.Add(time.Second), "r").Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m["mode"] != tc.wantMode {
				t.Errorf("mode = %v, want %q: %s", m["mode"], tc.wantMode, b)
			}
			if d, ok := m["dry_run"]; tc.wantDryRun && d != true {
				t.Errorf("dry_run = %v, want true: %s", d, b)
			} else if !tc.wantDryRun && ok {
				t.Errorf("a real upload's summary has dry_run %v: %s", d, b)
			}
			ops, ok := m["operations"]
			if tc.wantOps == nil {
				if ok {
					t.Errorf("a change file's summary has operations %v", ops)
				}
				return
			}
			got, _ := ops.(map[string]any)
			if len(got) != len(tc.wantOps) {
				t.Fatalf("operations = %v, want %v", ops, tc.wantOps)
			}
			for k, v := range tc.wantOps {
				if got[k] != v {
					t.Errorf("operations[%s] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestPublishDryRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// A real upload's receipt under the same name stays as it is.
	real := map[string][]byte{
		"receipts/912345602/a.xlsx.receipt.csv":  []byte("real"),
		"receipts/912345602/a.xlsx.receipt.xlsx": []byte("real"),
		"receipts/912345602/a.xlsx.summary.json": []byte(`{"job_id":"real"}`),
	}
	m := &memObjects{objects: map[string][]byte{}}
	for k, v := range real {
		m.objects[k] = v
	}
	job := lessee.Job{ID: "j2", Key: "dryrun/912345602/a.xlsx", Submitter: "912345602", Name: "a.xlsx",
		Format: lessee.FormatXLSX, State: lessee.JobCompleted, Mode: lessee.ModeChanges, DryRun: true,
		Applied: 1, Rejected: 1, Started: now.Add(-time.Second)}
	// The worker passes no change ids for a dry run; even one that slips
	// through is not written.
	rows := writeAll([]lessee.Result{
		{Index: 0, Line: 2, Status: lessee.StatusApplied, Message: "lessee would be added", ChangeID: "j2-0"},
		{Index: 1, Line: 3, Status: lessee.StatusRejected, Code: lessee.CodeNotOwner, Message: "not owner"},
	})
	if err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), job, nil, rows); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"delete receipts/912345602/history/j2/a.xlsx.dryrun.summary.json",
		"put receipts/912345602/history/j2/a.xlsx.dryrun.receipt.csv",
		"put receipts/912345602/history/j2/a.xlsx.dryrun.receipt.xlsx",
		"put receipts/912345602/history/j2/a.xlsx.dryrun.summary.json",
		"delete receipts/912345602/a.xlsx.dryrun.summary.json",
		"copy receipts/912345602/history/j2/a.xlsx.dryrun.receipt.csv receipts/912345602/a.xlsx.dryrun.receipt.csv",
		"copy receipts/912345602/history/j2/a.xlsx.dryrun.receipt.xlsx receipts/912345602/a.xlsx.dryrun.receipt.xlsx",
		"copy receipts/912345602/history/j2/a.xlsx.dryrun.summary.json receipts/912345602/a.xlsx.dryrun.summary.json",
	}
	if strings.Join(m.log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("writes:\n%s\nwant:\n%s", strings.Join(m.log, "\n"), strings.Join(want, "\n"))
	}
	for k, v := range real {
		if !bytes.Equal(m.objects[k], v) {
			t.Errorf("the dry run changed %s", k)
		}
	}
	recs := csvRecords(t, m.objects["receipts/912345602/a.xlsx.dryrun.receipt.csv"])
	if len(recs) != 3 || recs[1][6] != "applied" || recs[1][9] != "" || recs[2][9] != "" {
		t.Errorf("dry-run receipt = %q; want change_id empty", recs)
	}
	_, xrows := openReceipt(t, m.objects["receipts/912345602/a.xlsx.dryrun.receipt.xlsx"])
	if len(xrows) != 3 || len(xrows[1]) == 10 && xrows[1][9] != "" {
		t.Errorf("dry-run XLSX receipt = %q; want change_id empty", xrows)
	}
	var s Summary
	if err := json.Unmarshal(m.objects["receipts/912345602/a.xlsx.dryrun.summary.json"], &s); err != nil {
		t.Fatal(err)
	}
	if !s.DryRun || s.Mode != "changes" || s.Receipt != "receipts/912345602/a.xlsx.dryrun.receipt.csv" ||
		s.ReceiptXLSX != "receipts/912345602/a.xlsx.dryrun.receipt.xlsx" || s.Operations != nil {
		t.Errorf("summary = %+v", s)
	}
}

func TestPublishSnapshotXLSX(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &memObjects{objects: map[string][]byte{}}
	job := lessee.Job{ID: "j2", Key: "snapshot/912345602/fleet.xlsx", Submitter: "912345602", Name: "fleet.xlsx",
		Format: lessee.FormatXLSX, State: lessee.JobCompleted, Mode: lessee.ModeSnapshot,
		Operations: map[lessee.Operation]int{lessee.OpKeep: 1, lessee.OpReplace: 1, lessee.OpRemove: 1},
		Applied:    2, Unchanged: 1, Started: now.Add(-time.Second)}
	// The worker may hand over the user's header and cells; a snapshot's
	// XLSX receipt has the standard columns all the same, so that it shows
	// the derived operation and the vehicle of every line.
	userHeader := []string{"kjennemerke", "leietaker"}
	rows := func(w *Lines) error {
		for _, r := range snapshotResults {
			var cells []string
			if r.Line > 0 {
				cells = []string{r.Echo.RegistrationNumber, r.Echo.Lessee}
			}
			if err := w.WriteOriginal(cells, r); err != nil {
				return err
			}
		}
		return nil
	}
	if err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), job, userHeader, rows); err != nil {
		t.Fatal(err)
	}
	recs := csvRecords(t, m.objects["receipts/912345602/fleet.xlsx.receipt.csv"])
	if len(recs) != 4 || recs[3][0] != "" || recs[3][2] != "remove" || recs[3][9] != "j2-2" {
		t.Errorf("receipt = %q", recs)
	}
	_, xrows := openReceipt(t, m.objects["receipts/912345602/fleet.xlsx.receipt.xlsx"])
	if len(xrows) != 4 || strings.Join(xrows[0], ",") != strings.Join(Header(), ",") {
		t.Fatalf("XLSX receipt = %q; want the standard columns", xrows)
	}
	if xrows[2][2] != "replace" || xrows[3][0] != "" || xrows[3][2] != "remove" || xrows[3][3] != "EL10003" {
		t.Errorf("XLSX receipt = %q", xrows)
	}
	var s Summary
	if err := json.Unmarshal(m.objects["receipts/912345602/fleet.xlsx.summary.json"], &s); err != nil {
		t.Fatal(err)
	}
	if s.Mode != "snapshot" || s.DryRun || s.Operations["keep"] != 1 || s.Operations["replace"] != 1 ||
		s.Operations["remove"] != 1 || s.Operations["add"] != 0 || s.Rows != 3 {
		t.Errorf("summary = %+v", s)
	}
}
