package sqlstore_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestApplyChunk(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		newClock(s, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
		job := beginJob(t, s, "job-a")

		chunk1 := []row{
			{lessee.OpRemove, vin1, "", "2024-05-01"},        // 0 applied: closes the imported period
			{lessee.OpAdd, vin1, lesseeOrg, "2024-05-02"},    // 1 applied
			{lessee.OpAdd, vin2, person, "2024-05-01"},       // 2 applied
			{lessee.OpAdd, vinMissing, person, "2024-05-01"}, // 3 rejected
			{lessee.OpRemove, vin3, "", "2024-05-01"},        // 4 rejected: period already closed
		}
		var seen *lessee.State
		if err := s.ApplyChunk(ctx, job.ID, 0, keysFor(chunk1), decider(job.ID, 0, chunk1, &seen)); err != nil {
			t.Fatalf("chunk 1: %v", err)
		}
		if len(seen.Vehicles) != 3 || seen.Enterprises[fleetOwner] == nil ||
			len(seen.Vehicles[vin1].Periods) != 1 || !seen.Vehicles[vin1].Periods[0].End.IsZero() {
			t.Errorf("state given to decide = %+v", seen)
		}

		wantV1 := []lessee.Period{
			{ID: "import-" + vin1 + "-2023-01-01", LesseeID: person, Start: "2023-01-01", End: "2024-05-01"},
			{ID: "job-a-1", LesseeID: lesseeOrg, LesseeName: "Name 20", Start: "2024-05-02"},
		}
		if got := vehicle(t, s, vin1).Periods; !reflect.DeepEqual(got, wantV1) {
			t.Errorf("vehicle 1 periods = %+v\nwant %+v", got, wantV1)
		}
		if got := vehicle(t, s, vin2).Periods; len(got) != 1 || got[0].LesseeID != person || got[0].ID != "job-a-2" {
			t.Errorf("vehicle 2 periods = %+v", got)
		}

		j, err := s.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantCodes := map[lessee.Code]int{lessee.CodeVehicleNotFound: 1, lessee.CodeNoActiveLessee: 1}
		if j.RowsDone != 5 || j.Applied != 3 || j.Unchanged != 0 || j.Rejected != 2 || !reflect.DeepEqual(j.Codes, wantCodes) {
			t.Errorf("job after chunk 1 = %+v", j)
		}

		t.Run("Results", func(t *testing.T) {
			res := results(t, s, job.ID)
			if len(res) != 5 {
				t.Fatalf("got %d results", len(res))
			}
			wantStatus := []lessee.Status{lessee.StatusApplied, lessee.StatusApplied, lessee.StatusApplied, lessee.StatusRejected, lessee.StatusRejected}
			wantChange := []string{"job-a-0", "job-a-1", "job-a-2", "", ""}
			wantCode := []lessee.Code{"", "", "", lessee.CodeVehicleNotFound, lessee.CodeNoActiveLessee}
			for i, o := range res {
				if o.Index != i || o.Line != i+2 || o.Status != wantStatus[i] || o.ChangeID != wantChange[i] ||
					o.Code != wantCode[i] || o.Echo.Reference != fmt.Sprintf("ref-%d", i) || o.Echo.VIN != chunk1[i].vin {
					t.Errorf("result %d = %+v", i, o)
				}
			}
			if res[2].Echo.Lessee != "*********46" || res[1].Echo.Lessee != lesseeOrg || res[1].Echo.RegistrationNumber != "EL12345" {
				t.Errorf("echo = %+v / %+v", res[1].Echo, res[2].Echo)
			}
			if res[3].Message != "vehicle_not_found" {
				t.Errorf("message = %q", res[3].Message)
			}
		})

		t.Run("Audit", func(t *testing.T) {
			all := audit(t, s, "")
			if len(all) != 3 {
				t.Fatalf("got %d audit entries, want 3", len(all))
			}
			got := audit(t, s, vin1)
			if len(got) != 2 {
				t.Fatalf("vehicle 1: got %d audit entries", len(got))
			}
			rm, add := got[0], got[1]
			if rm.ChangeID != "job-a-0" || rm.JobID != job.ID || rm.Line != 2 || rm.Operation != "remove" ||
				rm.Submitter != fleetOwner || rm.OnBehalfOf != fleetOwner || rm.FileKey != job.Key ||
				rm.VIN != vin1 || rm.RegistrationNumber != "EL12345" || rm.LesseeID != person {
				t.Errorf("remove entry = %+v", rm)
			}
			if add.Operation != "add" || add.LesseeID != lesseeOrg || add.LesseeName != "Name 20" || add.BeforeJSON != "null" {
				t.Errorf("add entry = %+v", add)
			}
			var before, after map[string]string
			if err := json.Unmarshal([]byte(rm.BeforeJSON), &before); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(rm.AfterJSON), &after); err != nil {
				t.Fatal(err)
			}
			if before["lessee_id"] != person || before["end_date"] != "" || after["end_date"] != "2024-05-01" {
				t.Errorf("before %v after %v", before, after)
			}
			if rm.CreatedAt.IsZero() || rm.CreatedAt.Location() != time.UTC || rm.CreatedAt.Year() != 2024 {
				t.Errorf("created at = %v", rm.CreatedAt)
			}
		})

		// Chunk 2 repeats row 1: unchanged, nothing written but its result.
		chunk2 := []row{{lessee.OpAdd, vin1, lesseeOrg, "2024-05-02"}}
		if err := s.ApplyChunk(ctx, job.ID, 5, keysFor(chunk2), decider(job.ID, 5, chunk2, nil)); err != nil {
			t.Fatalf("chunk 2: %v", err)
		}
		if j, _ := s.Job(ctx, job.ID); j.RowsDone != 6 || j.Unchanged != 1 || j.Applied != 3 {
			t.Errorf("job after chunk 2 = %+v", j)
		}

		t.Run("ErrCheckpointMoved", func(t *testing.T) {
			// A retry of chunk 1 after its commit: refused before decide runs.
			called := false
			err := s.ApplyChunk(ctx, job.ID, 0, keysFor(chunk1), func(st *lessee.State) lessee.Decision {
				called = true
				return decider(job.ID, 0, chunk1, nil)(st)
			})
			if !errors.Is(err, sqlstore.ErrCheckpointMoved) || lessee.ErrorCode(err) != lessee.ECONFLICT {
				t.Fatalf("err = %v, want ErrCheckpointMoved", err)
			}
			if called {
				t.Error("decide ran for a moved checkpoint")
			}
			if n := len(results(t, s, job.ID)); n != 6 {
				t.Errorf("%d results, want 6", n)
			}
			if n := len(audit(t, s, "")); n != 3 {
				t.Errorf("%d audit entries, want 3", n)
			}
			if got := vehicle(t, s, vin1).Periods; !reflect.DeepEqual(got, wantV1) {
				t.Errorf("vehicle 1 changed: %+v", got)
			}
		})
	})
}

func TestApplyChunkErrors(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-e")
		rows := []row{{lessee.OpAdd, vin2, lesseeOrg, "2024-05-01"}}

		t.Run("ErrCheckpointAhead", func(t *testing.T) {
			err := s.ApplyChunk(ctx, job.ID, 3, keysFor(rows), decider(job.ID, 3, rows, nil))
			if !errors.Is(err, sqlstore.ErrCheckpointMoved) {
				t.Fatalf("err = %v, want ErrCheckpointMoved", err)
			}
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			err := s.ApplyChunk(ctx, "nope", 0, keysFor(rows), decider("nope", 0, rows, nil))
			if !errors.Is(err, sqlstore.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
		t.Run("ErrBadIndex", func(t *testing.T) {
			err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), decider(job.ID, 1, rows, nil))
			if err == nil || errors.Is(err, sqlstore.ErrCheckpointMoved) {
				t.Fatalf("err = %v, want an index error", err)
			}
		})
		t.Run("ErrCloseUnknownPeriod", func(t *testing.T) {
			// The open goes in first, then the close fails: both roll back.
			err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), func(st *lessee.State) lessee.Decision {
				d := decider(job.ID, 0, rows, nil)(st)
				return closing(d, lessee.Period{ID: "no-such-period", End: "2024-05-01"})
			})
			if !errors.Is(err, sqlstore.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
		t.Run("ErrClosePeriodOfAnotherVehicle", func(t *testing.T) {
			// vin1's period exists, but the close names vin3: refused, so a
			// wrong VIN can never end another vehicle's lessee period.
			err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), func(st *lessee.State) lessee.Decision {
				d := decider(job.ID, 0, rows, nil)(st)
				return closing(d, lessee.Period{ID: "import-" + vin1 + "-2023-01-01", End: "2024-05-01"})
			})
			if !errors.Is(err, sqlstore.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if got := vehicle(t, s, vin1).Periods; len(got) != 1 || !got[0].End.IsZero() {
				t.Errorf("vehicle 1 periods = %+v", got)
			}
		})
		t.Run("ErrNoChangeID", func(t *testing.T) {
			// An applied row must name its change: storage makes up no id
			// that could disagree with the period the decider opened.
			err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), func(st *lessee.State) lessee.Decision {
				d := decider(job.ID, 0, rows, nil)(st)
				if d.Outcomes[0].Status != lessee.StatusApplied {
					t.Fatalf("outcome = %+v, want applied", d.Outcomes[0])
				}
				d.Outcomes[0].ChangeID = ""
				return d
			})
			if err == nil || lessee.ErrorCode(err) != lessee.EINTERNAL || errors.Is(err, sqlstore.ErrNotFound) {
				t.Fatalf("err = %v, want an internal error", err)
			}
		})
		// Nothing of the failed chunks was written.
		if j, _ := s.Job(ctx, job.ID); j.RowsDone != 0 || j.Applied != 0 {
			t.Errorf("job = %+v", j)
		}
		if got := vehicle(t, s, vin2).Periods; len(got) != 0 {
			t.Errorf("vehicle 2 periods = %+v", got)
		}
		if n := len(results(t, s, job.ID)); n != 0 {
			t.Errorf("%d results stored", n)
		}
		if n := len(audit(t, s, "")); n != 0 {
			t.Errorf("%d audit entries stored", n)
		}
	})
}

// closing adds to d a row 1 (line 3) that closes period p of vehicle 3.
func closing(d lessee.Decision, p lessee.Period) lessee.Decision {
	d.Outcomes = append(d.Outcomes, lessee.Outcome{
		Result:    lessee.Result{Index: 1, Line: 3, Status: lessee.StatusApplied, ChangeID: "x"},
		Operation: lessee.OpRemove, VIN: vin3, RegistrationNumber: "CD12345", OnBehalfOf: fleetOwner,
	})
	d.Writes.Closed = append(d.Writes.Closed, lessee.PeriodWrite{VIN: vin3, Period: p, Line: 3})
	return d
}

func TestResultsPaging(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		job := beginJob(t, s, "job-p")
		const n = 20100 // several result pages (10,000 rows) and insert batches
		rows := make([]row, n)
		for i := range rows {
			rows[i] = row{lessee.OpAdd, fmt.Sprintf("WVWZZZ1JZXW%06d", 100000+i), lesseeOrg, "2024-05-01"}
		}
		if err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), decider(job.ID, 0, rows, nil)); err != nil {
			t.Fatal(err)
		}
		res := results(t, s, job.ID)
		if len(res) != n {
			t.Fatalf("got %d results, want %d", len(res), n)
		}
		for i, o := range res {
			if o.Index != i || o.Echo.VIN != rows[i].vin || o.Code != lessee.CodeVehicleNotFound {
				t.Fatalf("result %d = %+v", i, o)
			}
		}

		t.Run("ErrFromFn", func(t *testing.T) {
			stop := errors.New("stop")
			calls := 0
			err := s.Results(ctx, job.ID, func(lessee.Result) error {
				calls++
				if calls == 10500 { // in the second page, while the third is read
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || calls != 10500 {
				t.Errorf("err = %v after %d calls", err, calls)
			}
		})
	})
}

// TestApplyChunkConcurrent races two runs of the same job over the same
// chunks: per checkpoint exactly one commits, the other sees it moved.
func TestApplyChunkConcurrent(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-c")
		const rounds = 6
		for k := range rounds {
			rows := []row{{lessee.OpAdd, vin2, lesseeOrg, lessee.Date(fmt.Sprintf("2024-06-%02d", k+1))}}
			if k%2 == 1 {
				rows[0] = row{lessee.OpRemove, vin2, "", lessee.Date(fmt.Sprintf("2024-06-%02d", k+1))}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, 2)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = s.ApplyChunk(ctx, job.ID, k, keysFor(rows), decider(job.ID, k, rows, nil))
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, sqlstore.ErrCheckpointMoved):
					t.Fatalf("round %d: %v", k, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d runs committed, want exactly 1", k, won)
			}
		}
		j, err := s.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.RowsDone != rounds || j.Applied != rounds {
			t.Errorf("job = %+v", j)
		}
		if n := len(audit(t, s, vin2)); n != rounds {
			t.Errorf("%d audit entries, want %d", n, rounds)
		}
		if got := vehicle(t, s, vin2).Periods; len(got) != rounds/2 || !slices.IsSortedFunc(got, func(a, b lessee.Period) int {
			return cmp.Compare(a.Start, b.Start)
		}) {
			t.Errorf("vehicle 2 periods = %+v", got)
		}
	})
}

// TestApplyChunkCrossJobs runs chunks of different jobs that lock the same
// vehicles, named in opposite orders: they must queue, not deadlock.
func TestApplyChunkCrossJobs(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		fwd := []row{{lessee.OpRemove, vin3, "", "2024-01-01"}, {lessee.OpRemove, vin2, "", "2024-01-01"}, {lessee.OpRemove, vin1, "", "2030-01-01"}}
		rev := []row{fwd[2], fwd[1], fwd[0]}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for i, rows := range [][]row{fwd, rev} {
			job := beginJob(t, s, fmt.Sprintf("job-x%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 10*len(rows); k += len(rows) {
					if err := s.ApplyChunk(ctx, job.ID, k, keysFor(rows), decider(job.ID, k, rows, nil)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("chunk failed: %v", err)
		}
		// Exactly one of the two jobs closed vehicle 1's period.
		if n := len(audit(t, s, vin1)); n != 1 {
			t.Errorf("%d audit entries for vehicle 1, want 1", n)
		}
	})
}

// TestApplyChunkHistoryFrom checks that a chunk is given the periods still
// open on, or ending on or after, each vehicle's Keys.HistoryFrom date, and
// every period of a vehicle the keys give no date for.
func TestApplyChunkHistoryFrom(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-h")
		history := []row{
			{lessee.OpAdd, vin2, person, "2024-01-01"},
			{lessee.OpRemove, vin2, "", "2024-02-01"},
			{lessee.OpAdd, vin2, lesseeOrg, "2024-03-01"},
			{lessee.OpRemove, vin2, "", "2024-04-01"},
			{lessee.OpAdd, vin2, person, "2024-05-01"},
		}
		for i, r := range history { // one chunk each: the decider sees stored periods only
			if err := s.ApplyChunk(ctx, job.ID, i, keysFor([]row{r}), decider(job.ID, i, []row{r}, nil)); err != nil {
				t.Fatalf("history row %d: %v", i, err)
			}
		}
		starts := func(ps []lessee.Period) []lessee.Date {
			var out []lessee.Date
			for _, p := range ps {
				out = append(out, p.Start)
			}
			return out
		}
		for _, tc := range []struct {
			name  string
			since map[string]lessee.Date
			want  map[string][]lessee.Date // starts of the periods given, by VIN
		}{
			{"no dates: all", nil,
				map[string][]lessee.Date{vin1: {"2023-01-01"}, vin2: {"2024-01-01", "2024-03-01", "2024-05-01"}, vin3: {"2022-01-01"}}},
			{"by VIN", map[string]lessee.Date{vin2: "2024-03-15", vin3: "2023-01-01", vin1: "2030-01-01"},
				map[string][]lessee.Date{vin1: {"2023-01-01"}, vin2: {"2024-03-01", "2024-05-01"}, vin3: nil}},
			{"ending on the date", map[string]lessee.Date{vin2: "2024-04-01", vin3: "2022-12-31"},
				map[string][]lessee.Date{vin1: {"2023-01-01"}, vin2: {"2024-03-01", "2024-05-01"}, vin3: {"2022-01-01"}}},
			{"the earlier of VIN and registration number", map[string]lessee.Date{vin2: "2024-04-15", "AB54321": "2024-02-15"},
				map[string][]lessee.Date{vin1: {"2023-01-01"}, vin2: {"2024-03-01", "2024-05-01"}, vin3: {"2022-01-01"}}},
			{"registration number only", map[string]lessee.Date{"AB54321": "2024-06-01"},
				map[string][]lessee.Date{vin1: {"2023-01-01"}, vin2: {"2024-05-01"}, vin3: {"2022-01-01"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				j, err := s.Job(ctx, job.ID)
				if err != nil {
					t.Fatal(err)
				}
				keys := lessee.Keys{VINs: []string{vin1, vin2, vin3}, OrgNrs: []string{fleetOwner}, Since: tc.since}
				probe := []row{{lessee.OpAdd, vinMissing, person, "2024-06-01"}} // rejected: writes nothing else
				var seen *lessee.State
				if err := s.ApplyChunk(ctx, job.ID, j.RowsDone, keys, decider(job.ID, j.RowsDone, probe, &seen)); err != nil {
					t.Fatal(err)
				}
				for vin, want := range tc.want {
					if got := starts(seen.Vehicles[vin].Periods); !slices.Equal(got, want) {
						t.Errorf("%s: periods starting %v, want %v", vin, got, want)
					}
				}
			})
		}
		plan, err := s.PeriodsPlan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The end date must be part of the index search, not a filter on
		// every period of the vehicle.
		pgSearch := strings.Contains(plan, "lessee_periods_vin_end_idx") &&
			strings.Contains(plan, "Index Cond: ((vin = k.vin) AND (COALESCE(end_date, '9999-12-31'::text) >= k.since))")
		sqliteSearch := strings.Contains(plan, "USING INDEX lessee_periods_vin_end_idx (vin=? AND <expr>>?)")
		if !pgSearch && !sqliteSearch {
			t.Errorf("the periods query does not search lessee_periods_vin_end_idx by VIN and end date:\n%s", plan)
		}
	})
}
