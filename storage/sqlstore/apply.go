package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

// ApplyChunk applies one chunk of rows in one transaction. It locks the job
// and fails with ErrCheckpointMoved unless the job's RowsDone equals
// checkpoint; locks and loads the registry state named by keys; calls decide
// with it; then writes the decision's period writes, one audit entry per
// applied outcome, one result per outcome, and advances the checkpoint by
// len(Outcomes) with the counts. Outcomes must carry the indexes
// checkpoint, checkpoint+1, ... (in any order), and every applied one its
// ChangeID. A retry of a committed chunk finds the checkpoint moved and
// writes nothing.
//
// decide may run more than once per chunk if the caller retries, and must
// not have side effects beyond the State it is given.
func (s *Store) ApplyChunk(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys, decide func(*lessee.State) lessee.Decision) error {
	return s.ApplyChunkInTurn(ctx, jobID, checkpoint, keys, decide, lessee.ChunkTurn{})
}

// ApplyChunkInTurn is ApplyChunk for a chunk that may be in flight while
// the one before it commits (turn.Prior not nil). On PostgreSQL it then
// locks its vehicles, decides and writes without the job's lock, waits for
// the chunk before, and only then locks the job, checks the checkpoint and
// commits: a vehicle both chunks name was locked by the earlier one first
// (see lessee.ChunkTurn.Locked), so this one read it as the earlier one left
// it, and a chunk whose predecessor failed or was not committed rolls back.
// SQLite has one writer at a time, so there the chunk waits for the one
// before and then runs as ApplyChunk does.
func (s *Store) ApplyChunkInTurn(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys,
	decide func(*lessee.State) lessee.Decision, turn lessee.ChunkTurn) error {
	locked := func() {}
	if turn.Locked != nil {
		locked = sync.OnceFunc(turn.Locked)
	}
	defer locked() // whatever happens, the next chunk must not wait forever
	concurrent := turn.Prior != nil && s.dialect.name() == DialectPostgres
	if turn.Prior != nil && !concurrent {
		if err := turn.Prior(ctx); err != nil {
			return fmt.Errorf("apply chunk: %w: %w", errPriorChunk, err)
		}
	}

	// A dedicated connection, so that on PostgreSQL the bulk writes can use
	// COPY on the connection that holds the transaction.
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	w := &chunkTx{tx: tx, conn: conn, dialect: s.dialect, authority: s.authority}

	// In turn, the job is locked only once the chunk before has committed;
	// its checkpoint may still be behind this chunk's start until then, but
	// never past it unless this chunk is already done.
	job, err := s.getJob(ctx, tx, jobID, !concurrent)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if job.RowsDone > checkpoint || (!concurrent && job.RowsDone != checkpoint) {
		return fmt.Errorf("apply chunk: job %s has %d rows done, chunk starts at %d: %w",
			jobID, job.RowsDone, checkpoint, ErrCheckpointMoved)
	}
	st, err := w.loadState(ctx, job, keys)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	locked()
	d := decide(st)
	if err := checkOutcomes(d.Outcomes, checkpoint); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if job.Mode == lessee.ModeSnapshot {
		if err := w.writeNamed(ctx, jobID, d.Named); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
	}
	now := formatTime(s.now())
	if job.DryRun {
		// The same decision, kept aside: the registry, the audit log and
		// the exports see nothing, and no change id is handed out.
		if err := w.writeDryRunPeriods(ctx, jobID, d.Writes); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
		for i := range d.Outcomes {
			d.Outcomes[i].ChangeID = ""
		}
	} else {
		if err := w.writePeriods(ctx, d.Writes); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
		if err := w.writeAudit(ctx, job, d.Outcomes, now); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
	}
	if err := w.writeResults(ctx, jobID, d.Outcomes); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if concurrent {
		if err := turn.Prior(ctx); err != nil {
			return fmt.Errorf("apply chunk: %w: %w", errPriorChunk, err)
		}
		if job, err = s.getJob(ctx, tx, jobID, true); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
		if job.RowsDone != checkpoint {
			return fmt.Errorf("apply chunk: job %s has %d rows done, chunk starts at %d: %w",
				jobID, job.RowsDone, checkpoint, ErrCheckpointMoved)
		}
	}
	// The fleets' export marks come after the job's lock: chunks in turn
	// take these shared rows one after the other, never crosswise.
	if !job.DryRun {
		if err := markFleetsChanged(ctx, tx, changedFleets(d.Outcomes), now); err != nil {
			return fmt.Errorf("apply chunk: %w", err)
		}
	}
	if err := advanceJob(ctx, tx, job, d.Outcomes, now); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply chunk: commit: %w", err)
	}
	return nil
}

// errPriorChunk marks a chunk rolled back because the one before it failed.
var errPriorChunk = errors.New("the chunk before failed")

// chunkTx is a chunk's transaction, the connection it runs on (PostgreSQL
// reaches under it for COPY and pgx reads) and the dialect to write with.
type chunkTx struct {
	tx        *sqlx.Tx
	conn      *sqlx.Conn
	dialect   dialect
	authority *authorityCache // nil: read the authority tables every time
	// pipeline, when not nil (PostgreSQL), collects the writes that need no
	// answer before the next statement, to send them in one round trip at
	// flush: a single change's writes cost one round trip, not three.
	pipeline *pgx.Batch
}

// exec runs a statement that returns no rows, or queues it on the pipeline.
func (w *chunkTx) exec(ctx context.Context, query string, args ...any) error {
	if w.pipeline != nil {
		w.pipeline.Queue(sqlx.Rebind(sqlx.DOLLAR, query), args...)
		return nil
	}
	_, err := w.tx.ExecContext(ctx, w.tx.Rebind(query), args...)
	return err
}

// flush sends the statements queued on the pipeline, in order, and returns
// the first error of any of them.
func (w *chunkTx) flush(ctx context.Context) error {
	if w.pipeline == nil || w.pipeline.Len() == 0 {
		return nil
	}
	b := w.pipeline
	w.pipeline = &pgx.Batch{}
	return withPgx(w.conn, func(c *pgx.Conn) error {
		return c.SendBatch(ctx, b).Close()
	})
}

// insert writes rows (each with one value per column) into table.
func (w *chunkTx) insert(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	return w.dialect.insert(ctx, w, table, cols, rows)
}

// checkOutcomes makes sure outcomes cover exactly the rows after
// checkpoint, so the checkpoint stays the count of stored results, and that
// every applied outcome names its change: the audit log is keyed on it, and
// an id made up here could disagree with the one the decider gave the
// period it opened.
func checkOutcomes(outcomes []lessee.Outcome, checkpoint int) error {
	seen := make([]bool, len(outcomes))
	for _, o := range outcomes {
		i := o.Index - checkpoint
		if i < 0 || i >= len(outcomes) || seen[i] {
			return fmt.Errorf("outcome index %d outside or repeated in chunk %d..%d",
				o.Index, checkpoint, checkpoint+len(outcomes)-1)
		}
		seen[i] = true
		if o.Status == lessee.StatusApplied && o.ChangeID == "" {
			return fmt.Errorf("row %d: applied without a change id", o.Line)
		}
	}
	return nil
}

// changedFleets returns the fleet owners whose vehicles the applied
// outcomes changed, sorted, each once.
func changedFleets(outcomes []lessee.Outcome) []string {
	var fleets []string
	for _, o := range outcomes {
		if o.Status == lessee.StatusApplied && o.OnBehalfOf != "" {
			fleets = append(fleets, o.OnBehalfOf)
		}
	}
	slices.Sort(fleets)
	return slices.Compact(fleets)
}

// advanceJob moves the checkpoint past the chunk and adds its counts.
func advanceJob(ctx context.Context, tx *sqlx.Tx, job lessee.Job, outcomes []lessee.Outcome, now string) error {
	codes := job.Codes
	if codes == nil {
		codes = map[lessee.Code]int{}
	}
	applied, unchanged, rejected := job.Applied, job.Unchanged, job.Rejected
	for _, o := range outcomes {
		switch o.Status {
		case lessee.StatusApplied:
			applied++
		case lessee.StatusUnchanged:
			unchanged++
		case lessee.StatusRejected:
			rejected++
		}
		if o.Code != "" {
			codes[o.Code]++
		}
	}
	ops := job.Operations
	if ops == nil {
		ops = map[lessee.Operation]int{}
	}
	if job.Mode == lessee.ModeSnapshot {
		for _, o := range outcomes {
			if op := o.Echo.Operation; op != "" {
				ops[lessee.Operation(op)]++
			}
		}
	}
	codesJSON, err := encodeJSON(codes)
	if err != nil {
		return fmt.Errorf("advance job: %w", err)
	}
	opsJSON, err := encodeJSON(ops)
	if err != nil {
		return fmt.Errorf("advance job: %w", err)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE jobs
		SET rows_done = ?, applied = ?, unchanged = ?, rejected = ?, codes = ?, operations = ?, updated_at = ?
		WHERE id = ? AND rows_done = ?`),
		job.RowsDone+len(outcomes), applied, unchanged, rejected, codesJSON, opsJSON, now, job.ID, job.RowsDone)
	if err != nil {
		return fmt.Errorf("advance job: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("advance job: %w", err)
	} else if n != 1 {
		return fmt.Errorf("advance job %s: %w", job.ID, ErrCheckpointMoved)
	}
	return nil
}
