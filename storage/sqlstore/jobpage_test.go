package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestFindJobs pages through jobs by keyset with every filter, on both
// databases.
func TestFindJobs(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		newClock(s, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
		// Seven jobs, started a millisecond apart (the clock), alternating
		// between two submitters; job-3 is refused, job-5 has rejected rows
		// of MISSING_FIELD, job-6 has an INVALID_VIN count of zero, job-7 a
		// code whose name differs from MISSING_FIELD only where LIKE's '_'
		// would match any character.
		const other = "910000012"
		for i := 1; i <= 7; i++ {
			sub := fleetOwner
			if i%2 == 0 {
				sub = other
			}
			codes := map[lessee.Code]int{}
			switch i {
			case 5:
				codes[lessee.CodeMissingField] = 3
			case 6:
				codes[lessee.CodeInvalidVIN] = 0
			case 7:
				codes["MISSINGXFIELD"] = 1
			}
			if _, err := s.BeginJob(ctx, lessee.Job{ID: fmt.Sprintf("job-%d", i), Submitter: sub, Name: "f.csv", Codes: codes}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FinishJob(ctx, "job-3", lessee.JobRefused, lessee.CodeMissingColumn, "no lessee_id column"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, "job-5", lessee.JobCompleted, "", ""); err != nil {
			t.Fatal(err)
		}
		ids := func(jobs []lessee.Job) []string {
			out := []string{}
			for _, j := range jobs {
				out = append(out, j.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name      string
			submitter string
			state     lessee.JobState
			code      lessee.Code
			before    string
			limit     int
			want      []string
		}{
			{"All", "", "", "", "", 0, []string{"job-7", "job-6", "job-5", "job-4", "job-3", "job-2", "job-1"}},
			{"FirstPage", "", "", "", "", 3, []string{"job-7", "job-6", "job-5"}},
			{"SecondPage", "", "", "", "job-5", 3, []string{"job-4", "job-3", "job-2"}},
			{"LastPage", "", "", "", "job-2", 3, []string{"job-1"}},
			{"AfterLast", "", "", "", "job-1", 3, []string{}},
			{"UnknownCursor", "", "", "", "job-99", 3, []string{}},
			{"Submitter", other, "", "", "", 0, []string{"job-6", "job-4", "job-2"}},
			{"SubmitterPaged", fleetOwner, "", "", "job-5", 1, []string{"job-3"}},
			{"State", "", lessee.JobRunning, "", "", 0, []string{"job-7", "job-6", "job-4", "job-2", "job-1"}},
			{"RefusalCode", "", "", lessee.CodeMissingColumn, "", 0, []string{"job-3"}},
			{"RowCodeNotWildcard", "", "", lessee.CodeMissingField, "", 0, []string{"job-5"}},
			{"ZeroCountNoMatch", "", "", lessee.CodeInvalidVIN, "", 0, []string{}},
			{"AllFilters", fleetOwner, lessee.JobCompleted, lessee.CodeMissingField, "", 0, []string{"job-5"}},
			{"NoMatch", other, lessee.JobRefused, "", "", 0, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				jobs, err := s.FindJobs(ctx, tc.submitter, tc.state, tc.code, tc.before, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(jobs); !slices.Equal(got, tc.want) {
					t.Errorf("FindJobs(%q, %q, %q, before %q, %d) = %v, want %v", tc.submitter, tc.state, tc.code, tc.before, tc.limit, got, tc.want)
				}
			})
		}
		t.Run("FullJob", func(t *testing.T) {
			jobs, err := s.FindJobs(ctx, "", lessee.JobRefused, "", "", 1)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("FindJobs = %v, %v", jobs, err)
			}
			if j := jobs[0]; j.Code != lessee.CodeMissingColumn || j.Message != "no lessee_id column" || j.Finished.IsZero() {
				t.Errorf("refused job read back as %+v", j)
			}
		})
	})
}

// TestRejectedRows pages through a job's rejected rows, all and by code,
// on both databases, with rows written by ApplyChunk.
func TestRejectedRows(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-r")
		// 12 rows: every third for a missing vehicle (VEHICLE_NOT_FOUND),
		// row 4 removes vin2's lessee, which it has none of
		// (NO_ACTIVE_LESSEE), the rest add one lessee to vin3 (the first
		// applies, the others are unchanged).
		var rows []row
		for i := range 12 {
			switch {
			case i%3 == 0:
				rows = append(rows, row{lessee.OpAdd, vinMissing, lesseeOrg, "2024-03-11"})
			case i == 4:
				rows = append(rows, row{lessee.OpRemove, vin2, "", "2024-03-11"})
			default:
				rows = append(rows, row{lessee.OpAdd, vin3, lesseeOrg, "2024-03-11"})
			}
		}
		if err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), decider(job.ID, 0, rows, nil)); err != nil {
			t.Fatal(err)
		}
		var wantAll, wantMissing []int
		for _, r := range results(t, s, job.ID) {
			if r.Status == lessee.StatusRejected {
				wantAll = append(wantAll, r.Index)
				if r.Code == lessee.CodeVehicleNotFound {
					wantMissing = append(wantMissing, r.Index)
				}
			}
		}
		if len(wantMissing) != 4 || len(wantAll) <= len(wantMissing) {
			t.Fatalf("fixture: rejected rows %v, of them VEHICLE_NOT_FOUND %v; want 4 of that code and some other", wantAll, wantMissing)
		}
		// Pages of 2 until an empty one, as the job page walks them.
		walk := func(code lessee.Code) []int {
			var got []int
			after := -1
			for range 20 {
				page, err := s.RejectedRows(ctx, job.ID, code, after, 2)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 2 {
					t.Fatalf("page of %d rows, limit 2", len(page))
				}
				if len(page) == 0 {
					return got
				}
				for _, r := range page {
					if r.Status != lessee.StatusRejected || (code != "" && r.Code != code) || r.Message == "" || r.Line != r.Index+2 {
						t.Errorf("row %+v in a page of %q rejected rows", r, code)
					}
					got = append(got, r.Index)
				}
				after = page[len(page)-1].Index
			}
			t.Fatal("more than 20 pages")
			return nil
		}
		if got := walk(""); !slices.Equal(got, wantAll) {
			t.Errorf("rejected rows %v, want %v", got, wantAll)
		}
		if got := walk(lessee.CodeVehicleNotFound); !slices.Equal(got, wantMissing) {
			t.Errorf("VEHICLE_NOT_FOUND rows %v, want %v", got, wantMissing)
		}
		if page, err := s.RejectedRows(ctx, "no-such-job", "", -1, 10); err != nil || len(page) != 0 {
			t.Errorf("unknown job: %v, %v", page, err)
		}
		if _, err := s.RejectedRows(ctx, job.ID, "", -1, 0); err == nil {
			t.Error("limit 0 accepted")
		}
	})
}

// TestRejectedRowsUseIndex checks that SQLite reads a page of rejected rows
// through the partial indexes of migration 11, not by walking the job.
func TestRejectedRowsUseIndex(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.SQLite(t)
	for code, index := range map[lessee.Code]string{"": "row_results_rejected_idx", lessee.CodeVehicleNotFound: "row_results_rejected_code_idx"} {
		plan, err := s.RejectedRowsPlan(context.Background(), "job", code)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("plan of rejected rows with code %q does not read %s in order:\n%s", code, index, plan)
		}
	}
}
