package sqlstore_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestBeginJob(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		// 23:30 UTC on 10 March is already 11 March in Oslo.
		start := time.Date(2024, 3, 10, 23, 30, 0, 0, time.UTC)
		newClock(s, start)

		j := beginJob(t, s, "job-1")
		if j.State != lessee.JobRunning || j.ProcessingDate != "2024-03-11" || j.RowsDone != 0 ||
			!j.Started.After(start) || !j.Finished.IsZero() || j.Codes == nil || j.Submitter != fleetOwner {
			t.Errorf("new job = %+v", j)
		}

		t.Run("Idempotent", func(t *testing.T) {
			again, err := s.BeginJob(ctx, lessee.Job{ID: "job-1", Key: "other", ProcessingDate: "2030-01-01"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, j) {
				t.Errorf("second BeginJob = %+v\nwant the stored %+v", again, j)
			}
		})

		t.Run("KeepsCheckpoint", func(t *testing.T) {
			importRegistry(t, s)
			rows := []row{{lessee.OpAdd, vin2, lesseeOrg, "2024-03-11"}, {lessee.OpAdd, vinMissing, lesseeOrg, "2024-03-11"}}
			if err := s.ApplyChunk(ctx, "job-1", 0, keysFor(rows), decider("job-1", 0, rows, nil)); err != nil {
				t.Fatal(err)
			}
			again, err := s.BeginJob(ctx, lessee.Job{ID: "job-1"})
			if err != nil {
				t.Fatal(err)
			}
			want := map[lessee.Code]int{lessee.CodeVehicleNotFound: 1}
			if again.RowsDone != 2 || again.Applied != 1 || again.Rejected != 1 || !reflect.DeepEqual(again.Codes, want) {
				t.Errorf("resumed job = %+v", again)
			}
		})

		t.Run("UpdateJobInfo", func(t *testing.T) {
			info := lessee.Job{ID: "job-1", Format: lessee.FormatXLSX, Size: 1 << 40, SHA256: "abc", RowsTotal: 2, IgnoredColumns: []string{"colour", "notes"}}
			if err := s.UpdateJobInfo(ctx, info); err != nil {
				t.Fatal(err)
			}
			got, err := s.Job(ctx, "job-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != info.Format || got.Size != info.Size || got.SHA256 != "abc" || got.RowsTotal != 2 ||
				!reflect.DeepEqual(got.IgnoredColumns, info.IgnoredColumns) || got.RowsDone != 2 {
				t.Errorf("job after info = %+v", got)
			}
			if err := s.UpdateJobInfo(ctx, lessee.Job{ID: "nope"}); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("unknown job: err = %v, want ErrNotFound", err)
			}
		})

		t.Run("FinishJob", func(t *testing.T) {
			if err := s.FinishJob(ctx, "job-1", lessee.JobCompleted, "", ""); err != nil {
				t.Fatal(err)
			}
			first, err := s.Job(ctx, "job-1")
			if err != nil {
				t.Fatal(err)
			}
			if first.State != lessee.JobCompleted || first.Finished.IsZero() {
				t.Fatalf("finished job = %+v", first)
			}
			// A retried finish keeps the first outcome and time.
			if err := s.FinishJob(ctx, "job-1", lessee.JobRefused, lessee.CodeProcessingFailed, "x"); err != nil {
				t.Fatal(err)
			}
			second, err := s.Job(ctx, "job-1")
			if err != nil {
				t.Fatal(err)
			}
			if second.State != lessee.JobCompleted || !second.Finished.Equal(first.Finished) || second.Code != "" {
				t.Errorf("after second finish = %+v", second)
			}
			if err := s.FinishJob(ctx, "nope", lessee.JobCompleted, "", ""); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("unknown job: err = %v, want ErrNotFound", err)
			}
			if err := s.FinishJob(ctx, "job-1", lessee.JobRunning, "", ""); err == nil {
				t.Error("finish as running succeeded")
			}
		})

		t.Run("List", func(t *testing.T) {
			beginJob(t, s, "job-2")
			refused := beginJob(t, s, "job-3")
			if err := s.FinishJob(ctx, refused.ID, lessee.JobRefused, lessee.CodeUnsupportedFormat, "not a table"); err != nil {
				t.Fatal(err)
			}
			jobs, err := s.ListJobs(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, j := range jobs {
				ids = append(ids, j.ID)
			}
			if want := []string{"job-3", "job-2", "job-1"}; !reflect.DeepEqual(ids, want) {
				t.Errorf("ListJobs = %v, want %v", ids, want)
			}
			if jobs[0].Code != lessee.CodeUnsupportedFormat || jobs[0].Message != "not a table" {
				t.Errorf("refused job = %+v", jobs[0])
			}
			if jobs, _ := s.ListJobs(ctx, 1); len(jobs) != 1 {
				t.Errorf("ListJobs(1) returned %d", len(jobs))
			}
		})

		if _, err := s.Job(ctx, "nope"); !errors.Is(err, sqlstore.ErrNotFound) || lessee.ErrorCode(err) != lessee.ENOTFOUND {
			t.Errorf("Job(nope): err = %v, want ErrNotFound", err)
		}
	})
}

func TestJobCounts(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		counts, err := s.JobCounts(ctx)
		if err != nil || len(counts) != 0 {
			t.Fatalf("counts of no jobs = %v, %v", counts, err)
		}
		for _, id := range []string{"job-1", "job-2", "job-3", "job-4"} {
			beginJob(t, s, id)
		}
		if err := s.FinishJob(ctx, "job-1", lessee.JobCompleted, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, "job-2", lessee.JobCompleted, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, "job-3", lessee.JobRefused, lessee.CodeMissingColumn, "no operation column"); err != nil {
			t.Fatal(err)
		}
		counts, err = s.JobCounts(ctx)
		want := map[lessee.JobState]int{lessee.JobCompleted: 2, lessee.JobRefused: 1, lessee.JobRunning: 1}
		if err != nil || !reflect.DeepEqual(counts, want) {
			t.Fatalf("counts = %v, %v; want %v", counts, err, want)
		}
	})
}
