package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// inTurn applies a chunk in a goroutine the way the worker does: started
// after the chunk before holds its locks, committing after it. It returns
// the chunk's locked and done signals and where its error lands.
type turnChunk struct {
	locked, done chan struct{}
	err          error
}

func applyInTurn(ctx context.Context, s *sqlstore.Store, jobID string, checkpoint int, rows []row,
	decide func(*lessee.State) lessee.Decision, prior *turnChunk) *turnChunk {
	c := &turnChunk{locked: make(chan struct{}), done: make(chan struct{})}
	turn := lessee.ChunkTurn{Locked: func() { close(c.locked) }}
	if prior != nil {
		<-prior.locked
		turn.Prior = func(ctx context.Context) error {
			select {
			case <-prior.done:
				return prior.err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	go func() {
		defer close(c.done)
		c.err = s.ApplyChunkInTurn(ctx, jobID, checkpoint, keysFor(rows), decide, turn)
	}()
	return c
}

// TestApplyChunkInTurn: on PostgreSQL a chunk decides while the one before
// it is still open, sees a vehicle both name as the earlier chunk left it,
// and commits only after it, never after a failure; SQLite runs them one
// after the other with the same result.
func TestApplyChunkInTurn(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		importRegistry(t, s)
		newClock(s, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
		postgres := s.Dialect() == sqlstore.DialectPostgres

		t.Run("DisjointChunksOverlap", func(t *testing.T) {
			job := beginJob(t, s, "turn-disjoint")
			first := []row{{lessee.OpAdd, vin2, person, "2024-05-01"}}
			second := []row{{lessee.OpRemove, vin1, "", "2024-05-01"}}
			secondDecided := make(chan struct{})
			var overlapped bool
			c1 := applyInTurn(ctx, s, job.ID, 0, first, func(st *lessee.State) lessee.Decision {
				// Still open: on PostgreSQL the second chunk decides now.
				select {
				case <-secondDecided:
					overlapped = true
				case <-time.After(3 * time.Second):
				}
				return decider(job.ID, 0, first, nil)(st)
			}, nil)
			c2 := applyInTurn(ctx, s, job.ID, 1, second, func(st *lessee.State) lessee.Decision {
				close(secondDecided)
				return decider(job.ID, 1, second, nil)(st)
			}, c1)
			<-c2.done
			if c1.err != nil || c2.err != nil {
				t.Fatalf("chunks: %v, %v", c1.err, c2.err)
			}
			if overlapped != postgres {
				t.Errorf("second chunk decided while the first was open: %v, want %v", overlapped, postgres)
			}
			if j, _ := s.Job(ctx, job.ID); j.RowsDone != 2 || j.Applied != 2 {
				t.Errorf("job = %+v", j)
			}
			if got := vehicle(t, s, vin1).Periods; len(got) != 1 || got[0].End != "2024-05-01" {
				t.Errorf("vehicle 1 periods = %+v", got)
			}
		})

		t.Run("SharedVehicleSeesTheEarlierChunk", func(t *testing.T) {
			job := beginJob(t, s, "turn-shared")
			first := []row{{lessee.OpAdd, vin3, person, "2024-06-01"}}
			second := []row{{lessee.OpAdd, vin3, lesseeOrg, "2024-07-01"}}
			c1 := applyInTurn(ctx, s, job.ID, 0, first, func(st *lessee.State) lessee.Decision {
				time.Sleep(300 * time.Millisecond) // the second chunk is waiting for vin3 meanwhile
				return decider(job.ID, 0, first, nil)(st)
			}, nil)
			var seen *lessee.State
			c2 := applyInTurn(ctx, s, job.ID, 1, second, decider(job.ID, 1, second, &seen), c1)
			<-c2.done
			if c1.err != nil || c2.err != nil {
				t.Fatalf("chunks: %v, %v", c1.err, c2.err)
			}
			// Had it read vin3 before the first chunk committed, the
			// second would not see the period opened on 2024-06-01.
			ps := seen.Vehicles[vin3].Periods
			if len(ps) == 0 || ps[len(ps)-1].ID != "turn-shared-0" {
				t.Errorf("second chunk saw vin3's periods %+v, want the first chunk's last", ps)
			}
			res := results(t, s, job.ID)
			if len(res) != 2 || res[0].Status != lessee.StatusApplied || res[1].Status != lessee.StatusRejected {
				t.Errorf("results = %+v", res)
			}
		})

		t.Run("PriorFailedRollsBack", func(t *testing.T) {
			job := beginJob(t, s, "turn-failed")
			rows := []row{{lessee.OpAdd, vin2, lesseeOrg, "2025-01-01"}}
			failed := &turnChunk{locked: make(chan struct{}), done: make(chan struct{}), err: errors.New("lost the database")}
			close(failed.locked)
			close(failed.done)
			c := applyInTurn(ctx, s, job.ID, 0, rows, decider(job.ID, 0, rows, nil), failed)
			<-c.done
			if c.err == nil || !errors.Is(c.err, failed.err) {
				t.Fatalf("chunk after a failed one: %v", c.err)
			}
			assertUntouched(t, s, job.ID)
		})

		t.Run("CheckpointBehind", func(t *testing.T) {
			// The chunk before ended without committing (no error seen):
			// the checkpoint is not at this chunk's start, so it rolls back.
			job := beginJob(t, s, "turn-behind")
			rows := []row{{lessee.OpAdd, vin2, lesseeOrg, "2025-01-01"}}
			vanished := &turnChunk{locked: make(chan struct{}), done: make(chan struct{})}
			close(vanished.locked)
			close(vanished.done)
			c := applyInTurn(ctx, s, job.ID, 1, rows, decider(job.ID, 1, rows, nil), vanished)
			<-c.done
			if !errors.Is(c.err, sqlstore.ErrCheckpointMoved) {
				t.Fatalf("chunk whose checkpoint is behind: %v, want ErrCheckpointMoved", c.err)
			}
			assertUntouched(t, s, job.ID)
		})
	})
}

// assertUntouched fails unless the job has no rows done, no results and no
// period of its own.
func assertUntouched(t *testing.T, s *sqlstore.Store, jobID string) {
	t.Helper()
	if j, _ := s.Job(context.Background(), jobID); j.RowsDone != 0 || j.Applied != 0 {
		t.Errorf("job = %+v", j)
	}
	if res := results(t, s, jobID); len(res) != 0 {
		t.Errorf("results written: %+v", res)
	}
	for _, p := range vehicle(t, s, vin2).Periods {
		if strings.HasPrefix(p.ID, jobID) {
			t.Errorf("period written: %+v", p)
		}
	}
}
