package sqlstore_test

import (
	"context"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
	"github.com/fleetreg/lessee/validate"
)

// TestLoadedHistoryHoldsEveryOverlap: the periods a chunk loads, cut per
// vehicle at validate.KeysFor's Since, hold every period an add of the
// chunk could overlap (bounded ones and leases that begin after the rows'
// dates), so validate.Decide judges the rows alike with them and with the
// vehicle's whole history, on both databases.
func TestLoadedHistoryHoldsEveryOverlap(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-overlap")
		// vin2: person 2025-01-01 to 2025-06-01 (ended before the rows),
		// lesseeOrg 2027-01-01 to 2027-06-01 and person from 2028-01-01
		// (both after the rows' dates).
		history := []row{
			{lessee.OpAdd, vin2, person, "2025-01-01"},
			{lessee.OpRemove, vin2, "", "2025-06-01"},
			{lessee.OpAdd, vin2, lesseeOrg, "2027-01-01"},
			{lessee.OpRemove, vin2, "", "2027-06-01"},
			{lessee.OpAdd, vin2, person, "2028-01-01"},
		}
		for i, r := range history { // one chunk each: the decider sees stored periods only
			if err := s.ApplyChunk(ctx, job.ID, i, keysFor([]row{r}), decider(job.ID, i, []row{r}, nil)); err != nil {
				t.Fatalf("history row %d: %v", i, err)
			}
		}

		vjob := validate.Job{ID: "job-rows", Submitter: fleetOwner, ProcessingDate: "2026-03-01",
			Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		change := func(i int, op lessee.Operation, id string, start, end lessee.Date) lessee.Row {
			c := lessee.Change{Operation: op, VIN: vin2, LesseeID: id, StartDate: start, EndDate: end}
			return lessee.Row{Index: i, Line: i + 2, Change: c}
		}
		rows := []lessee.Row{
			change(0, lessee.OpAdd, lesseeOrg, "2026-01-01", "2026-06-01"), // a short lease before later ones
			change(1, lessee.OpAdd, person, "2026-07-01", "2027-01-01"),    // ends the day the next begins
			change(2, lessee.OpAdd, lesseeOrg, "2027-06-01", "2028-01-02"), // runs into the one from 2028
			change(3, lessee.OpAdd, person, "2026-12-01", ""),              // runs into 2027's
			change(4, lessee.OpRemove, "", "", "2027-03-01"),               // ends 2027's, in force then
		}
		want := []lessee.Status{lessee.StatusApplied, lessee.StatusApplied, lessee.StatusRejected, lessee.StatusRejected, lessee.StatusApplied}

		// decide runs validate.Decide on a copy of the state a chunk with
		// keys loads, and hands the store only a rejected probe row, so
		// that nothing is written and both runs see the same registry.
		decide := func(keys lessee.Keys) (loaded []lessee.Date, out []lessee.Outcome) {
			t.Helper()
			j, err := s.Job(ctx, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			probe := decider(job.ID, j.RowsDone, []row{{lessee.OpAdd, vinMissing, person, "2026-01-01"}}, nil)
			err = s.ApplyChunk(ctx, job.ID, j.RowsDone, keys, func(st *lessee.State) lessee.Decision {
				for _, p := range st.Vehicles[vin2].Periods {
					loaded = append(loaded, p.Start)
				}
				out = validate.Decide(validate.Config{}, vjob, cloneState(st), rows).Outcomes
				return probe(st)
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(loaded)
			return loaded, out
		}
		keys := validate.KeysFor(vjob, rows)
		if got := keys.HistoryFrom(vin2, ""); got != "2026-01-01" {
			t.Fatalf("HistoryFrom = %q, want the rows' earliest date 2026-01-01", got)
		}
		trimmedStarts, trimmed := decide(keys)
		keys.Since = nil
		fullStarts, full := decide(keys)

		if w := []lessee.Date{"2027-01-01", "2028-01-01"}; !slices.Equal(trimmedStarts, w) {
			t.Errorf("the chunk loaded periods starting %v, want %v", trimmedStarts, w)
		}
		if w := []lessee.Date{"2025-01-01", "2027-01-01", "2028-01-01"}; !slices.Equal(fullStarts, w) {
			t.Errorf("the whole history is %v, want %v", fullStarts, w)
		}
		if !reflect.DeepEqual(trimmed, full) {
			t.Fatalf("decided with the loaded periods:\n%+v\nwith the whole history:\n%+v", trimmed, full)
		}
		for i, o := range trimmed {
			if o.Status != want[i] {
				t.Errorf("row %d: %s %s %q, want %s", i, o.Status, o.Code, o.Message, want[i])
			}
			if o.Status == lessee.StatusRejected && (o.Code != lessee.CodeLesseeConflict || !overlapNamed.MatchString(o.Message)) {
				t.Errorf("row %d: %s %q, want a LESSEE_CONFLICT naming the dates", i, o.Code, o.Message)
			}
		}
	})
}

// overlapNamed matches a conflict that names the dates of the period it
// overlaps, or of each of several.
var overlapNamed = regexp.MustCompile(`overlaps (the lessee|\d+ lessee periods) registered from 202`)
