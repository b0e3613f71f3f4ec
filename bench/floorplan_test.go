package bench

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestPlanPeriodWrites(t *testing.T) {
	end := func(s string) *string { return &s }
	// The run's new periods as they ended up: id, vin, end date.
	inserted := [][]any{
		{"j-0", "V1", "2025-02-01"}, // opened by row 0, ended by row 1 (same chunk)
		{"j-2", "V2", "2025-03-01"}, // opened by row 2, ended by row 5 (next chunk)
		{"j-3", "V3", nil},          // opened by row 3 with an end date, ended again... open at last
		{"j-6", "V1", "2025-09-01"}, // opened by row 6, ended by row 7 (same chunk), then twice more in the next
	}
	changes := []floorChange{
		{Index: 7, ChangeID: "j-7", Period: "j-6", End: end("2025-08-01")},
		{Index: 0, ChangeID: "j-0", Period: "j-0"},
		{Index: 1, ChangeID: "j-1", Period: "j-0", End: end("2025-02-01")},
		{Index: 2, ChangeID: "j-2", Period: "j-2"},
		{Index: 3, ChangeID: "j-3", Period: "j-3", End: end("2026-01-01")},
		{Index: 4, ChangeID: "j-4", Period: "import-9", End: end("2025-04-01")}, // a period on file before the run
		{Index: 5, ChangeID: "j-5", Period: "j-2", End: end("2025-03-01")},
		{Index: 6, ChangeID: "j-6", Period: "j-6"},
		{Index: 8, ChangeID: "j-8", Period: "j-6", End: end("2025-08-15")},
		{Index: 9, ChangeID: "j-9", Period: "j-6", End: end("2025-09-01")},
		{Index: 10, ChangeID: "j-10", Period: "import-9", End: end("2025-05-01")},
		{Index: 11, ChangeID: "j-11", Period: "import-9", End: end("2025-06-01")},
	}
	rows, plan, err := planPeriodWrites(inserted, 0, 2, changes, 4)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]any{
		{"j-0", "V1", "2025-02-01"}, // folded: one insert with its end
		{"j-2", "V2", nil},          // inserted open, ended by the next chunk
		{"j-3", "V3", "2026-01-01"}, // as its add wrote it
		{"j-6", "V1", "2025-08-01"},
	}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("inserted rows = %v\nwant %v", rows, wantRows)
	}
	wantPlan := []chunkWrites{
		{Opened: []int{0, 1, 2}},
		{Opened: []int{3}, Ends: []floorEnd{{"import-9", end("2025-04-01")}, {"j-2", end("2025-03-01")}}},
		// One write per period per chunk: the last state it left.
		{Ends: []floorEnd{{"j-6", end("2025-09-01")}, {"import-9", end("2025-06-01")}}},
	}
	if !reflect.DeepEqual(plan, wantPlan) {
		t.Errorf("plan = %s\nwant %s", planString(plan), planString(wantPlan))
	}
	if n := countEnds(plan); n != 4 {
		t.Errorf("countEnds = %d, want 4", n)
	}
	// The original rows are left as they were.
	if inserted[1][2] != "2025-03-01" {
		t.Errorf("inserted rows changed: %v", inserted)
	}

	t.Run("ErrUnopened", func(t *testing.T) {
		if _, _, err := planPeriodWrites([][]any{{"j-1", "V", nil}}, 0, 2, nil, 4); err == nil {
			t.Error("a new period no change opened was planned")
		}
	})
	t.Run("ErrChangedBeforeOpened", func(t *testing.T) {
		ch := []floorChange{{Index: 0, ChangeID: "j-0", Period: "j-5", End: end("2025-01-01")}, {Index: 5, ChangeID: "j-5", Period: "j-5"}}
		if _, _, err := planPeriodWrites([][]any{{"j-5", "V", nil}}, 0, 2, ch, 4); err == nil {
			t.Error("a period changed before its add was planned")
		}
	})
}

func TestAuditPeriod(t *testing.T) {
	for _, c := range []struct {
		before, after, id string
		end               string
		err               bool
	}{
		{`null`, `{"id":"a","lessee_id":"x","start_date":"2025-01-01"}`, "a", "", false},
		{`{"id":"a"}`, `{"id":"a","end_date":"2025-02-01"}`, "a", "2025-02-01", false},
		{`{"id":"b","end_date":"2025-02-01"}`, `null`, "b", "2025-02-01", false},
		{`null`, `null`, "", "", true},
		{`null`, `{`, "", "", true},
	} {
		id, end, err := auditPeriod(c.before, c.after)
		if (err != nil) != c.err {
			t.Errorf("%s / %s: err %v", c.before, c.after, err)
			continue
		}
		got := ""
		if end != nil {
			got = *end
		}
		if id != c.id || got != c.end {
			t.Errorf("%s / %s = %q %q, want %q %q", c.before, c.after, id, got, c.id, c.end)
		}
	}
}

// planString shows a plan with its end dates, not their addresses.
func planString(plan []chunkWrites) string {
	var b strings.Builder
	for i, c := range plan {
		fmt.Fprintf(&b, "chunk %d: opened %v, ends", i, c.Opened)
		for _, e := range c.Ends {
			fmt.Fprintf(&b, " %s=%v", e.ID, endValue(e.End))
		}
		b.WriteString("; ")
	}
	return b.String()
}
