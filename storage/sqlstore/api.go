package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetreg/lessee"
)

// This file is the single-change API's use of the engine: one change in a
// transaction of its own, through the same state loading (and row locks),
// decision, period writes, audit log and export marks as a file's chunk,
// with its answer kept under an idempotency key.

// IdempotencyWindow is how long an answer is kept under its key.
const IdempotencyWindow = 24 * time.Hour

// ErrIdempotencyKeyReused is returned when an idempotency key comes again
// with a different request.
var ErrIdempotencyKeyReused = &lessee.Error{Code: lessee.ECONFLICT, Message: "idempotency key reused with another request"}

// APICall and APIAnswer are the domain's.
type (
	APICall   = lessee.APICall
	APIAnswer = lessee.APIAnswer
)

// ApplyOne applies one change in a transaction of its own. With an
// idempotency key it first looks for the answer kept under it (from the
// same submitter, within IdempotencyWindow): a repeat of the same request
// gets that answer and changes nothing (replayed is true), another request
// gets ErrIdempotencyKeyReused. Otherwise it locks and loads the state
// named by keys as ApplyChunk does, so that an API change and a file's
// chunk touching the same vehicle serialize; calls decide, which must
// return one outcome (index 0); writes the periods and the audit entry
// (source api, the request id); keeps answer's answer under the key; and
// commits. It does not mark the fleet's export: every change of a fleet
// would queue on that one row, so the caller marks the fleets of its
// changes in batches (MarkFleetChanged). Two calls with one key apply once: the
// second waits on the first's key row and then answers as it did.
func (s *Store) ApplyOne(ctx context.Context, call APICall, keys lessee.Keys,
	decide func(*lessee.State) lessee.Decision, answer func(lessee.Outcome) (APIAnswer, error)) (ans APIAnswer, replayed bool, err error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	w := &chunkTx{tx: tx, conn: conn, dialect: s.dialect, authority: s.authority}
	now := s.now()

	if call.IdempotencyKey != "" {
		// Takes the key, or takes over one kept past the window; blocks
		// while another transaction holds it, then does nothing.
		res, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO api_idempotency (orgnr, idem_key, request_hash, created_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (orgnr, idem_key) DO UPDATE
			SET request_hash = excluded.request_hash, status = 0, body = '', created_at = excluded.created_at
			WHERE api_idempotency.created_at < ?`),
			call.Submitter, call.IdempotencyKey, call.RequestHash, formatTime(now), formatTime(now.Add(-IdempotencyWindow)))
		if err != nil {
			return ans, false, fmt.Errorf("apply change: idempotency: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return ans, false, fmt.Errorf("apply change: idempotency: %w", err)
		} else if n == 0 {
			var kept struct {
				Hash   string `db:"request_hash"`
				Status int    `db:"status"`
				Body   string `db:"body"`
			}
			if err := tx.GetContext(ctx, &kept, tx.Rebind(`SELECT request_hash, status, body FROM api_idempotency
				WHERE orgnr = ? AND idem_key = ?`), call.Submitter, call.IdempotencyKey); err != nil {
				return ans, false, fmt.Errorf("apply change: idempotency: %w", err)
			}
			if kept.Hash != call.RequestHash {
				return ans, false, ErrIdempotencyKeyReused
			}
			return APIAnswer{Status: kept.Status, Body: []byte(kept.Body)}, true, nil
		}
	}

	job := lessee.Job{ID: call.JobID(), Submitter: call.Submitter, Key: "api", Mode: lessee.ModeChanges}
	st, err := w.loadState(ctx, job, keys)
	if err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	d := decide(st)
	if len(d.Outcomes) != 1 {
		return ans, false, fmt.Errorf("apply change: %d outcomes for one change", len(d.Outcomes))
	}
	if err := checkOutcomes(d.Outcomes, 0); err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	stamp := formatTime(now)
	if s.dialect.name() == DialectPostgres {
		// From here on nothing is read: the writes go in one round trip.
		w.pipeline = &pgx.Batch{}
	}
	if err := w.writePeriods(ctx, d.Writes); err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	if err := w.writeAuditFrom(ctx, job, d.Outcomes, stamp, call.RequestID); err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	if ans, err = answer(d.Outcomes[0]); err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	if call.IdempotencyKey != "" {
		if err := w.exec(ctx, `UPDATE api_idempotency SET status = ?, body = ?
			WHERE orgnr = ? AND idem_key = ?`, ans.Status, string(ans.Body), call.Submitter, call.IdempotencyKey); err != nil {
			return ans, false, fmt.Errorf("apply change: idempotency: %w", err)
		}
	}
	if err := w.flush(ctx); err != nil {
		return ans, false, fmt.Errorf("apply change: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return ans, false, fmt.Errorf("apply change: commit: %w", err)
	}
	return ans, false, nil
}

// ForgetIdempotencyKeys removes the answers kept longer than
// IdempotencyWindow and returns how many. Safe to run from every process.
func (s *Store) ForgetIdempotencyKeys(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM api_idempotency WHERE created_at < ?`),
		formatTime(s.now().Add(-IdempotencyWindow)))
	if err != nil {
		return 0, fmt.Errorf("forget idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("forget idempotency keys: %w", err)
	}
	return int(n), nil
}
