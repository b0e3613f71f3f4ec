package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/fleetreg/lessee"
)

// writePeriods persists the period writes of a chunk: the decider has folded
// its rows in order already, so each period is written once, as it ends up.
// The periods on file are ended before the new ones go in, so that no
// statement leaves two periods of a vehicle overlapping, even for a moment:
// PostgreSQL checks lessee_periods_no_overlap per statement.
func (w *chunkTx) writePeriods(ctx context.Context, writes lessee.Writes) error {
	if err := w.closePeriods(ctx, writes.Closed); err != nil {
		return err
	}
	inserts := make([][]any, 0, len(writes.Opened))
	for _, pw := range writes.Opened {
		p := pw.Period
		inserts = append(inserts, []any{p.ID, pw.VIN, p.LesseeID, p.LesseeName, string(p.Start), nullDate(p.End)})
	}
	if err := w.insert(ctx, "lessee_periods", []string{"id", "vin", "lessee_id", "lessee_name", "start_date", "end_date"}, inserts); err != nil {
		return fmt.Errorf("open lessee periods: %w", err)
	}
	return nil
}

// closePeriods sets the end date of periods that existed before the chunk,
// a batch per statement, and fails with ErrNotFound unless every one
// matched its id and vehicle: a wrong VIN must never end another vehicle's
// lessee period.
func (w *chunkTx) closePeriods(ctx context.Context, closed []lessee.PeriodWrite) error {
	const per = maxParams / 3
	for len(closed) > 0 {
		batch := closed[:min(per, len(closed))]
		closed = closed[len(batch):]
		err := w.dialect.closePeriods(ctx, w, batch, func(n int) error {
			if n != len(batch) {
				return fmt.Errorf("close lessee periods: %d of %d found (first at row %d): %w", n, len(batch), batch[0].Line, ErrNotFound)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("close lessee periods: %w", err)
		}
	}
	return nil
}

// auditPeriod is the JSON form of a lessee period in the audit log.
type auditPeriod struct {
	ID         string `json:"id"`
	LesseeID   string `json:"lessee_id"`
	LesseeName string `json:"lessee_name,omitempty"`
	Start      string `json:"start_date"`
	End        string `json:"end_date,omitempty"`
}

func periodJSON(p *lessee.Period) (string, error) {
	if p == nil {
		return "null", nil
	}
	return encodeJSON(auditPeriod{
		ID: p.ID, LesseeID: p.LesseeID, LesseeName: p.LesseeName, Start: string(p.Start), End: string(p.End),
	})
}

// writeAudit records every applied outcome of a file's chunk.
func (w *chunkTx) writeAudit(ctx context.Context, job lessee.Job, outcomes []lessee.Outcome, now string) error {
	return w.writeAuditFrom(ctx, job, outcomes, now, "")
}

// writeAuditFrom records every applied outcome; with a request id they
// came from the single-change API (source api), else from a file.
func (w *chunkTx) writeAuditFrom(ctx context.Context, job lessee.Job, outcomes []lessee.Outcome, now, requestID string) error {
	rows, err := auditRows(job, outcomes, now, requestID)
	if err != nil {
		return err
	}
	cols := auditColumns
	if requestID != "" {
		cols = apiAuditColumns
	}
	if err := w.insert(ctx, "audit_log", cols, rows); err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

// The audit log's columns for a file's changes, and for the API's.
var (
	auditColumns = []string{"change_id", "job_id", "row_line", "submitter", "on_behalf_of",
		"file_key", "operation", "vin", "registration_number", "lessee_id", "lessee_name", "before_json", "after_json", "created_at"}
	apiAuditColumns = append(slices.Clip(auditColumns), "source", "request_id")
)

// auditRows returns the audit log rows (auditColumns, or apiAuditColumns
// with a request id) of every applied outcome.
func auditRows(job lessee.Job, outcomes []lessee.Outcome, now, requestID string) ([][]any, error) {
	var rows [][]any
	for _, o := range outcomes {
		if o.Status != lessee.StatusApplied {
			continue
		}
		before, err := periodJSON(o.Before)
		if err != nil {
			return nil, fmt.Errorf("row %d: audit: %w", o.Line, err)
		}
		after, err := periodJSON(o.After)
		if err != nil {
			return nil, fmt.Errorf("row %d: audit: %w", o.Line, err)
		}
		// The lessee as it stands after the change; a change without an
		// after state is recorded with the lessee it ended.
		var lesseeID, lesseeName string
		if p := cmp.Or(o.After, o.Before); p != nil {
			lesseeID, lesseeName = p.LesseeID, p.LesseeName
		}
		row := []any{
			o.ChangeID, job.ID, o.Line, job.Submitter, o.OnBehalfOf, job.Key,
			string(o.Operation), o.VIN, o.RegistrationNumber, lesseeID, lesseeName, before, after, now,
		}
		if requestID != "" {
			row = append(row, "api", requestID)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// writeResults stores one result per outcome.
func (w *chunkTx) writeResults(ctx context.Context, jobID string, outcomes []lessee.Outcome) error {
	rows := make([][]any, 0, len(outcomes))
	for _, o := range outcomes {
		rows = append(rows, []any{
			jobID, o.Index, o.Line, o.Echo.Reference, o.Echo.Operation, o.Echo.RegistrationNumber,
			o.Echo.VIN, o.Echo.Lessee, string(o.Status), string(o.Code), o.Message, o.ChangeID,
		})
	}
	err := w.insert(ctx, "row_results", []string{"job_id", "row_index", "row_line", "reference", "operation",
		"registration_number", "vin", "lessee", "status", "code", "message", "change_id"}, rows)
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
