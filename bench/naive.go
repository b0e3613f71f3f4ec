package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/validate"
)

// naiveJobID is the job the naive baseline records its rows under.
const naiveJobID = "naive"

// Naive is the reference implementation the real path is measured against:
// the same reader, decisions, schema and bookkeeping (registry writes, audit
// entry, per-row result, checkpoint), but one transaction per row and one
// lookup per row: lock the job, find and lock the row's vehicle, load its
// lessee periods, the enterprises and delegation the row involves, decide,
// write. It processes the first rows of the file at path, uploaded by
// submitter, into the migrated registry at databaseURL.
func Naive(ctx context.Context, databaseURL, path, submitter string, rows int) (Measure, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return Measure{}, fmt.Errorf("naive: %w", err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	vjob := validate.Job{ID: naiveJobID, Submitter: submitter, ProcessingDate: lessee.DateOf(now), Now: now}
	stamp := now.Format("2006-01-02T15:04:05.000000000Z07:00")
	if _, err := conn.Exec(ctx, `INSERT INTO jobs (id, object_key, submitter, state, processing_date, started, updated_at)
		VALUES ($1, $2, $3, 'running', $4, $5, $5)`, naiveJobID, objectkey.InboxKey(submitter, "naive.csv"), submitter,
		string(vjob.ProcessingDate), stamp); err != nil {
		return Measure{}, fmt.Errorf("naive: begin job: %w", err)
	}

	start := time.Now()
	// It reads only the first rows, but Open refuses a file over the size
	// limit outright, as the service would without the bench's own limit.
	limits := ingest.DefaultLimits()
	if st, err := os.Stat(path); err == nil {
		limits.MaxBytes = max(limits.MaxBytes, st.Size())
	}
	table, _, err := ingest.Open(ctx, path, limits)
	if err != nil {
		return Measure{}, fmt.Errorf("naive: %w", err)
	}
	defer table.Close()
	n := 0
	for n < rows {
		raw, err := table.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Measure{}, fmt.Errorf("naive: read: %w", err)
		}
		row := validate.ParseRow(validate.Config{}, vjob, raw)
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return naiveRow(ctx, tx, vjob, row, stamp)
		}); err != nil {
			return Measure{}, fmt.Errorf("naive: row %d: %w", raw.Line, err)
		}
		n++
	}
	return Measure{Rows: n, Wall: time.Since(start)}, nil
}

// naiveRow looks up, decides and writes one row inside tx.
func naiveRow(ctx context.Context, tx pgx.Tx, job validate.Job, row lessee.Row, stamp string) error {
	var done int
	if err := tx.QueryRow(ctx, `SELECT rows_done FROM jobs WHERE id = $1 FOR UPDATE`, job.ID).Scan(&done); err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	if done != row.Index {
		return fmt.Errorf("checkpoint %d, row index %d", done, row.Index)
	}
	st := lessee.NewState()
	if row.Problem == nil {
		ch := row.Change
		for _, q := range []struct{ col, key string }{{"vin", ch.VIN}, {"registration_number", ch.RegistrationNumber}} {
			if q.key == "" {
				continue
			}
			if err := loadVehicle(ctx, tx, st, q.col, q.key); err != nil {
				return err
			}
		}
		for _, org := range []string{job.Submitter, ch.OnBehalfOf} {
			if err := loadEnterprise(ctx, tx, st, org); err != nil {
				return err
			}
		}
		if f := ch.OnBehalfOf; f != "" && f != job.Submitter {
			if err := loadDelegations(ctx, tx, st, f, job.Submitter); err != nil {
				return err
			}
		}
	}
	d := validate.Decide(validate.Config{}, job, st, []lessee.Row{row})
	o := d.Outcomes[0]
	if o.Status == lessee.StatusApplied {
		if err := naiveWrite(ctx, tx, job, d.Writes, o, stamp); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO row_results (job_id, row_index, row_line, reference, operation,
		registration_number, vin, lessee, status, code, message, change_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		job.ID, o.Index, o.Line, o.Echo.Reference, o.Echo.Operation, o.Echo.RegistrationNumber, o.Echo.VIN,
		o.Echo.Lessee, string(o.Status), string(o.Code), o.Message, o.ChangeID); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	col := map[lessee.Status]string{lessee.StatusApplied: "applied", lessee.StatusUnchanged: "unchanged", lessee.StatusRejected: "rejected"}[o.Status]
	if _, err := tx.Exec(ctx, `UPDATE jobs SET rows_done = rows_done + 1, `+col+` = `+col+` + 1, updated_at = $2
		WHERE id = $1`, job.ID, stamp); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// loadVehicle locks the vehicle whose col is key, if any, and loads its
// lessee periods.
func loadVehicle(ctx context.Context, tx pgx.Tx, st *lessee.State, col, key string) error {
	var v lessee.Vehicle
	var since string
	err := tx.QueryRow(ctx, `SELECT vin, registration_number, owner_orgnr, owner_since FROM vehicles
		WHERE `+col+` = $1 FOR UPDATE`, key).Scan(&v.VIN, &v.RegistrationNumber, &v.Owner, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vehicle: %w", err)
	}
	if st.Vehicles[v.VIN] != nil {
		return nil
	}
	v.OwnerSince = lessee.Date(since)
	rows, err := tx.Query(ctx, `SELECT id, lessee_id, lessee_name, start_date, COALESCE(end_date, '')
		FROM lessee_periods WHERE vin = $1 ORDER BY start_date, id`, v.VIN)
	if err != nil {
		return fmt.Errorf("periods: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p lessee.Period
		var start, end string
		if err := rows.Scan(&p.ID, &p.LesseeID, &p.LesseeName, &start, &end); err != nil {
			return fmt.Errorf("periods: %w", err)
		}
		p.Start, p.End = lessee.Date(start), lessee.Date(end)
		v.Periods = append(v.Periods, p)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("periods: %w", err)
	}
	st.Vehicles[v.VIN] = &v
	st.ByReg[v.RegistrationNumber] = v.VIN
	return nil
}

// loadEnterprise loads an enterprise with its terms, if it exists.
func loadEnterprise(ctx context.Context, tx pgx.Tx, st *lessee.State, orgnr string) error {
	if orgnr == "" || st.Enterprises[orgnr] != nil {
		return nil
	}
	e := &lessee.Enterprise{OrgNr: orgnr}
	err := tx.QueryRow(ctx, `SELECT name, fleet_owner FROM enterprises WHERE orgnr = $1`, orgnr).Scan(&e.Name, &e.FleetOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enterprise: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT agreement, version, accepted_at FROM terms_acceptances
		WHERE orgnr = $1 ORDER BY accepted_at`, orgnr)
	if err != nil {
		return fmt.Errorf("terms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a lessee.Acceptance
		var agreement, at string
		if err := rows.Scan(&agreement, &a.Version, &at); err != nil {
			return fmt.Errorf("terms: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return fmt.Errorf("terms: %w", err)
		}
		a.OrgNr, a.Agreement, a.AcceptedAt = orgnr, lessee.Agreement(agreement), t
		e.Terms = append(e.Terms, a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("terms: %w", err)
	}
	st.Enterprises[orgnr] = e
	return nil
}

// loadDelegations loads what fleetOwner delegated to delegate.
func loadDelegations(ctx context.Context, tx pgx.Tx, st *lessee.State, fleetOwner, delegate string) error {
	rows, err := tx.Query(ctx, `SELECT valid_from, COALESCE(valid_to, ''), COALESCE(revoked_at, '') FROM delegations
		WHERE fleet_owner_orgnr = $1 AND delegate_orgnr = $2 ORDER BY valid_from`, fleetOwner, delegate)
	if err != nil {
		return fmt.Errorf("delegations: %w", err)
	}
	defer rows.Close()
	k := [2]string{fleetOwner, delegate}
	for rows.Next() {
		var from, to, revoked string
		if err := rows.Scan(&from, &to, &revoked); err != nil {
			return fmt.Errorf("delegations: %w", err)
		}
		d := lessee.Delegation{FleetOwner: fleetOwner, Delegate: delegate, ValidFrom: lessee.Date(from), ValidTo: lessee.Date(to)}
		if revoked != "" {
			t, err := time.Parse(time.RFC3339Nano, revoked)
			if err != nil {
				return fmt.Errorf("delegations: %w", err)
			}
			d.RevokedAt = &t
		}
		st.Delegations[k] = append(st.Delegations[k], d)
	}
	return rows.Err()
}

// naivePeriod is the audit log's JSON form of a lessee period.
type naivePeriod struct {
	ID         string `json:"id"`
	LesseeID   string `json:"lessee_id"`
	LesseeName string `json:"lessee_name,omitempty"`
	Start      string `json:"start_date"`
	End        string `json:"end_date,omitempty"`
}

func periodJSON(p *lessee.Period) string {
	if p == nil {
		return "null"
	}
	b, _ := json.Marshal(naivePeriod{ID: p.ID, LesseeID: p.LesseeID, LesseeName: p.LesseeName, Start: string(p.Start), End: string(p.End)})
	return string(b)
}

// naiveWrite writes an applied row's registry change and audit entry.
func naiveWrite(ctx context.Context, tx pgx.Tx, job validate.Job, w lessee.Writes, o lessee.Outcome, stamp string) error {
	for _, pw := range w.Opened {
		if _, err := tx.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, lessee_name, start_date, end_date)
			VALUES ($1, $2, $3, $4, $5, $6)`, pw.Period.ID, pw.VIN, pw.Period.LesseeID, pw.Period.LesseeName,
			string(pw.Period.Start), nullDate(pw.Period.End)); err != nil {
			return fmt.Errorf("open period: %w", err)
		}
	}
	for _, pw := range w.Closed {
		if _, err := tx.Exec(ctx, `UPDATE lessee_periods SET end_date = $1 WHERE id = $2 AND vin = $3`,
			nullDate(pw.Period.End), pw.Period.ID, pw.VIN); err != nil {
			return fmt.Errorf("close period: %w", err)
		}
	}
	var lesseeID, lesseeName string
	if p := o.After; p != nil {
		lesseeID, lesseeName = p.LesseeID, p.LesseeName
	} else if p := o.Before; p != nil {
		lesseeID, lesseeName = p.LesseeID, p.LesseeName
	}
	vin, reg, op, onBehalf := o.VIN, o.RegistrationNumber, string(o.Operation), o.OnBehalfOf
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (change_id, job_id, row_line, submitter, on_behalf_of, file_key,
		operation, vin, registration_number, lessee_id, lessee_name, before_json, after_json, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		o.ChangeID, job.ID, o.Line, job.Submitter, onBehalf, objectkey.InboxKey(job.Submitter, "naive.csv"), op, vin, reg,
		lesseeID, lesseeName, periodJSON(o.Before), periodJSON(o.After), stamp); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// nullDate is d, or NULL for the zero date.
func nullDate(d lessee.Date) *string {
	if d.IsZero() {
		return nil
	}
	s := string(d)
	return &s
}

// itoa formats n with thousands separators.
func itoa(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + itoa(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
