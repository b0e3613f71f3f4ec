package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/receipt"
)

// DefaultReceiptRetention is how long a job's own receipts are kept in its
// history folder (--receipt-retention).
const DefaultReceiptRetention = 90 * 24 * time.Hour

// historyStore is what the retention sweep needs from SQL.
type historyStore interface {
	// ExpiredHistories returns up to limit jobs whose receipts are in
	// their history folder and that finished before cutoff.
	ExpiredHistories(ctx context.Context, cutoff time.Time, limit int) ([]lessee.Job, error)
	// HistoryRemoved records that a job's history folder is gone.
	HistoryRemoved(ctx context.Context, id string) error
}

// HistorySweeper removes the receipts of jobs that finished longer than
// Retention ago from their history folders. Every process may run one at
// once: removing an object twice removes it once, and a job is recorded
// as swept only after its files are gone.
type HistorySweeper struct {
	Store     historyStore
	Objects   receipt.ObjectWriter
	Retention time.Duration
	Log       *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// sweepBatch is how many jobs a sweep takes from SQL at a time.
const sweepBatch = 500

// Sweep removes every expired history folder and returns how many.
func (s *HistorySweeper) Sweep(ctx context.Context) (int, error) {
	cutoff := s.Now().Add(-s.Retention)
	p := receipt.NewPublisher(s.Objects, "", s.Now)
	removed := 0
	for {
		jobs, err := s.Store.ExpiredHistories(ctx, cutoff, sweepBatch)
		if err != nil {
			return removed, fmt.Errorf("sweep receipts: %w", err)
		}
		for _, j := range jobs {
			if err := p.Remove(ctx, j, j.History); err != nil {
				return removed, fmt.Errorf("sweep receipts of job %s: %w", j.ID, err)
			}
			if err := s.Store.HistoryRemoved(ctx, j.ID); err != nil {
				return removed, fmt.Errorf("sweep receipts: %w", err)
			}
			removed++
		}
		if len(jobs) < sweepBatch {
			return removed, nil
		}
	}
}

// Run sweeps every interval until ctx is done.
func (s *HistorySweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("could not remove expired receipts; the next sweep tries again", "err", err)
		} else if n > 0 {
			s.Log.Info("receipts past their retention removed", "jobs", n, "retention", s.Retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
