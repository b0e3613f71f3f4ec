package receipt

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

func TestCSVWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []lessee.Result{
		{Line: 2, Echo: lessee.Echo{Reference: "=HYPERLINK(\"x\")", Operation: "add", RegistrationNumber: "AB12345", Lessee: "*********45"}, Status: lessee.StatusApplied, Message: "lessee added", ChangeID: "j-0"},
		{Line: 4, Echo: lessee.Echo{Reference: "r;2", Operation: "remove", VIN: "WVWZZZ1JZXW000001"}, Status: lessee.StatusRejected, Code: lessee.CodeNoActiveLessee, Message: "-no lessee\nto remove"},
	}
	for _, o := range outcomes {
		if err := w.Write(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()
	if !strings.HasPrefix(raw, "\ufeffrow,reference,") {
		t.Fatalf("receipt must start with BOM and header, got %q", raw[:20])
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(raw, "\ufeff")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(recs[0], ","), "row,reference,operation,registration_number,vin,lessee,status,code,message,change_id"; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	if recs[1][0] != "2" || recs[1][1] != "'=HYPERLINK(\"x\")" || recs[1][6] != "applied" || recs[1][9] != "j-0" {
		t.Errorf("row 1 = %q", recs[1])
	}
	if recs[2][0] != "4" || recs[2][1] != "r;2" || recs[2][7] != "NO_ACTIVE_LESSEE" || recs[2][8] != "'-no lessee\nto remove" {
		t.Errorf("row 2 = %q", recs[2])
	}
}

func TestNeutralise(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":           "",
		"=1+2":       "'=1+2",
		"+47":        "'+47",
		"-1":         "'-1",
		"@SUM(A1)":   "'@SUM(A1)",
		"\tx":        "'\tx",
		"\rx":        "'\rx",
		"AB12345":    "AB12345",
		"a=b":        "a=b",
		"2026-01-01": "2026-01-01",
	} {
		if got := Neutralise(in); got != want {
			t.Errorf("Neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummaryKeys(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	job := lessee.Job{ID: "j", Key: "inbox/923609016/a.csv", Version: "v", SHA256: "ab", Size: 10, Format: lessee.FormatCSV,
		State: lessee.JobCompleted, Applied: 2, Unchanged: 1, Rejected: 3, Codes: map[lessee.Code]int{lessee.CodeNotOwner: 3}, Started: start}
	b, err := NewSummary(job, start.Add(1500*time.Millisecond), "receipts/923609016/a.csv.receipt.csv").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key", "version", "sha256", "size", "format", "status", "rows", "applied", "unchanged", "rejected", "codes", "ignored_columns", "started", "finished"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks key %q", k)
		}
	}
	if m["rows"].(float64) != 6 || m["status"] != "completed" || m["duration_ms"].(float64) != 1500 {
		t.Errorf("summary = %s", b)
	}
	if _, ok := m["code"]; ok {
		t.Errorf("completed summary should have no code: %s", b)
	}
}
