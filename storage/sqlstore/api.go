package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

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

// ApplyOne applies one change in a transaction of its own (ApplyBatch of
// one). With an idempotency key, a repeat of the same request within
// IdempotencyWindow gets the answer kept under it and changes nothing
// (replayed is true); another request under the key gets
// ErrIdempotencyKeyReused.
func (s *Store) ApplyOne(ctx context.Context, call APICall, keys lessee.Keys,
	decide func(*lessee.State) lessee.Decision, answer func(lessee.Outcome) (APIAnswer, error)) (ans APIAnswer, replayed bool, err error) {
	res, err := s.ApplyBatch(ctx, []lessee.APIChange{{Call: call, Keys: keys, Decide: decide, Answer: answer}})
	if err != nil {
		return ans, false, err
	}
	return res[0].Answer, res[0].Replayed, res[0].Err
}

// ApplyBatch applies changes of the single-change API in one transaction,
// as a file's chunk applies its rows: it locks and loads the state the
// changes name (so that they serialize with files' chunks touching the
// same vehicles), decides each change with its own Decide, writes the
// periods and the audit entries (source api, each call's request id), keeps
// each answer under its call's idempotency key, and commits once. Many
// concurrent calls then cost a few round trips between them, not a few
// each.
//
// Changes are independent: a change naming a vehicle, or an idempotency
// key, that an earlier change of the batch names is not decided (Again),
// and must come in a later batch. With an idempotency key, a repeat of a
// request kept within IdempotencyWindow is answered as it was and changes
// nothing; another request under the key gets ErrIdempotencyKeyReused;
// a key held by a concurrent transaction is waited for. An error means
// the whole batch was rolled back: nothing of it is applied, and each
// change may be tried again (alone, to tell which one failed).
//
// It does not mark the fleets' exports: every change of a fleet would queue
// on that one row, so the caller marks them in batches (MarkFleetChanged).
func (s *Store) ApplyBatch(ctx context.Context, changes []lessee.APIChange) ([]lessee.APIResult, error) {
	results := make([]lessee.APIResult, len(changes))
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	w := &chunkTx{tx: tx, conn: conn, dialect: s.dialect, authority: s.authority}
	now := s.now()

	live, err := takeIdempotencyKeys(ctx, tx, changes, results, now)
	if err != nil {
		return nil, fmt.Errorf("apply changes: idempotency: %w", err)
	}
	if len(live) == 0 {
		// Replays and refusals only: nothing to write.
		return results, tx.Commit()
	}
	keys := make([]lessee.Keys, len(live))
	for i, c := range live {
		keys[i] = changes[c].Keys
	}
	st, err := w.loadState(ctx, lessee.Job{Mode: lessee.ModeChanges}, lessee.MergeKeys(keys...))
	if err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}

	var writes lessee.Writes
	var audit [][]any
	claimed := map[string]bool{} // VINs an earlier change of the batch names
	if s.dialect.name() == DialectPostgres {
		// From here on nothing is read: the writes go in one round trip.
		w.pipeline = &pgx.Batch{}
	}
	for _, c := range live {
		ch, res := changes[c], &results[c]
		vins := vehiclesNamed(st, ch.Keys)
		if slices.ContainsFunc(vins, func(v string) bool { return claimed[v] }) {
			res.Again = true
			if ch.Call.IdempotencyKey != "" {
				// Taken above for this change: give it back for its turn.
				if err := w.exec(ctx, `DELETE FROM api_idempotency WHERE orgnr = ? AND idem_key = ?`,
					ch.Call.Submitter, ch.Call.IdempotencyKey); err != nil {
					return nil, fmt.Errorf("apply changes: idempotency: %w", err)
				}
			}
			continue
		}
		for _, v := range vins {
			claimed[v] = true
		}
		d := ch.Decide(st)
		if len(d.Outcomes) != 1 {
			return nil, fmt.Errorf("apply changes: %d outcomes for one change", len(d.Outcomes))
		}
		if err := checkOutcomes(d.Outcomes, 0); err != nil {
			return nil, fmt.Errorf("apply changes: %w", err)
		}
		writes.Opened = append(writes.Opened, d.Writes.Opened...)
		writes.Closed = append(writes.Closed, d.Writes.Closed...)
		job := lessee.Job{ID: ch.Call.JobID(), Submitter: ch.Call.Submitter, Key: "api"}
		rows, err := auditRows(job, d.Outcomes, formatTime(now), ch.Call.RequestID)
		if err != nil {
			return nil, fmt.Errorf("apply changes: %w", err)
		}
		audit = append(audit, rows...)
		if res.Answer, err = ch.Answer(d.Outcomes[0]); err != nil {
			return nil, fmt.Errorf("apply changes: %w", err)
		}
		if ch.Call.IdempotencyKey != "" {
			if err := w.exec(ctx, `UPDATE api_idempotency SET status = ?, body = ?
				WHERE orgnr = ? AND idem_key = ?`, res.Answer.Status, string(res.Answer.Body), ch.Call.Submitter, ch.Call.IdempotencyKey); err != nil {
				return nil, fmt.Errorf("apply changes: idempotency: %w", err)
			}
		}
	}
	if err := w.writePeriods(ctx, writes); err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	if err := w.insert(ctx, "audit_log", apiAuditColumns, audit); err != nil {
		return nil, fmt.Errorf("apply changes: write audit: %w", err)
	}
	if err := w.flush(ctx); err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply changes: commit: %w", err)
	}
	return results, nil
}

// takeIdempotencyKeys takes, in one statement, the idempotency key of every
// change that has one (or takes over one kept past the window), and
// answers the changes whose key is kept: a repeat with the answer kept, a
// reused key with ErrIdempotencyKeyReused. A key a concurrent transaction
// holds is waited for. A second change of the batch under a key already in
// it comes Again. It returns the indexes of the changes left to decide, in
// order.
func takeIdempotencyKeys(ctx context.Context, tx *sqlx.Tx, changes []lessee.APIChange, results []lessee.APIResult, now time.Time) ([]int, error) {
	type orgKey struct{ org, key string }
	first := map[orgKey]int{}
	var rows [][]any
	for i, c := range changes {
		if c.Call.IdempotencyKey == "" {
			continue
		}
		k := orgKey{c.Call.Submitter, c.Call.IdempotencyKey}
		if _, dup := first[k]; dup {
			results[i].Again = true
			continue
		}
		first[k] = i
		rows = append(rows, []any{c.Call.Submitter, c.Call.IdempotencyKey, c.Call.RequestHash, formatTime(now)})
	}
	taken := map[orgKey]bool{}
	if len(rows) > 0 {
		// In key order, so that two batches wanting the same keys queue
		// instead of deadlocking.
		slices.SortFunc(rows, func(a, b []any) int {
			return cmp.Or(cmp.Compare(a[0].(string), b[0].(string)), cmp.Compare(a[1].(string), b[1].(string)))
		})
		query, args := valuesStatement(`INSERT INTO api_idempotency (orgnr, idem_key, request_hash, created_at)`,
			`ON CONFLICT (orgnr, idem_key) DO UPDATE
			SET request_hash = excluded.request_hash, status = 0, body = '', created_at = excluded.created_at
			WHERE api_idempotency.created_at < ?
			RETURNING orgnr, idem_key`, rows)
		var got []struct {
			Org string `db:"orgnr"`
			Key string `db:"idem_key"`
		}
		if err := tx.SelectContext(ctx, &got, tx.Rebind(query), append(args, formatTime(now.Add(-IdempotencyWindow)))...); err != nil {
			return nil, err
		}
		for _, g := range got {
			taken[orgKey{g.Org, g.Key}] = true
		}
	}
	var live []int
	for i, c := range changes {
		k := orgKey{c.Call.Submitter, c.Call.IdempotencyKey}
		switch {
		case results[i].Again:
		case c.Call.IdempotencyKey == "" || taken[k]:
			live = append(live, i)
		default:
			var kept struct {
				Hash   string `db:"request_hash"`
				Status int    `db:"status"`
				Body   string `db:"body"`
			}
			if err := tx.GetContext(ctx, &kept, tx.Rebind(`SELECT request_hash, status, body FROM api_idempotency
				WHERE orgnr = ? AND idem_key = ?`), k.org, k.key); err != nil {
				return nil, err
			}
			if kept.Hash != c.Call.RequestHash {
				results[i].Err = ErrIdempotencyKeyReused
				continue
			}
			results[i].Answer, results[i].Replayed = APIAnswer{Status: kept.Status, Body: []byte(kept.Body)}, true
		}
	}
	return live, nil
}

// vehiclesNamed returns the VINs of the vehicles on file that keys name,
// by VIN or by registration number.
func vehiclesNamed(st *lessee.State, keys lessee.Keys) []string {
	var vins []string
	for _, v := range keys.VINs {
		if st.Vehicles[v] != nil {
			vins = append(vins, v)
		}
	}
	for _, r := range keys.RegNumbers {
		if v, ok := st.ByReg[r]; ok {
			vins = append(vins, v)
		}
	}
	return vins
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
