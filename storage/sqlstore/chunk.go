package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

// ApplyChunk applies one chunk of rows in one transaction. It locks the job
// and fails with ErrCheckpointMoved unless the job's RowsDone equals
// checkpoint; locks and loads the registry state named by keys; calls decide
// with it; then writes the mutations of applied outcomes, one audit entry per
// applied outcome, one result per outcome, and advances the checkpoint by
// len(outcomes) with the counts. Outcomes must carry the indexes checkpoint,
// checkpoint+1, ... (in any order). A retry of a committed chunk finds the
// checkpoint moved and writes nothing.
//
// decide may run more than once per chunk if the caller retries, and must
// not have side effects beyond the State it is given.
func (s *Store) ApplyChunk(ctx context.Context, jobID string, checkpoint int, keys lessee.Keys, decide func(*lessee.State) []lessee.Outcome) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	job, err := s.getJob(ctx, tx, jobID, true)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if job.RowsDone != checkpoint {
		return fmt.Errorf("apply chunk: job %s has %d rows done, chunk starts at %d: %w",
			jobID, job.RowsDone, checkpoint, ErrCheckpointMoved)
	}
	st, err := s.loadState(ctx, tx, keys)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	outcomes := decide(st)
	if err := checkIndexes(outcomes, checkpoint); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	for i := range outcomes {
		o := &outcomes[i]
		if o.Status == lessee.StatusApplied && o.ChangeID == "" {
			// The audit log needs a key; derive one the same way on every
			// run so a retry writes the same id.
			o.ChangeID = jobID + ":" + strconv.Itoa(o.Index)
		}
	}
	if err := writeMutations(ctx, tx, outcomes); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	now := formatTime(s.now())
	if err := writeAudit(ctx, tx, job, st, outcomes, now); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if err := writeResults(ctx, tx, jobID, outcomes); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if err := advanceJob(ctx, tx, job, outcomes, now); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply chunk: commit: %w", err)
	}
	return nil
}

// checkIndexes makes sure outcomes cover exactly the rows after checkpoint,
// so the checkpoint stays the count of stored results.
func checkIndexes(outcomes []lessee.Outcome, checkpoint int) error {
	seen := make([]bool, len(outcomes))
	for _, o := range outcomes {
		i := o.Index - checkpoint
		if i < 0 || i >= len(outcomes) || seen[i] {
			return fmt.Errorf("outcome index %d outside or repeated in chunk %d..%d",
				o.Index, checkpoint, checkpoint+len(outcomes)-1)
		}
		seen[i] = true
	}
	return nil
}

type vehicleRow struct {
	VIN                string `db:"vin"`
	RegistrationNumber string `db:"registration_number"`
	Owner              string `db:"owner_orgnr"`
	OwnerSince         string `db:"owner_since"`
}

type periodRow struct {
	ID         string         `db:"id"`
	VIN        string         `db:"vin"`
	LesseeID   string         `db:"lessee_id"`
	LesseeName string         `db:"lessee_name"`
	Start      string         `db:"start_date"`
	End        sql.NullString `db:"end_date"`
}

func (r periodRow) period() lessee.Period {
	return lessee.Period{
		ID:         r.ID,
		LesseeID:   r.LesseeID,
		LesseeName: r.LesseeName,
		Start:      lessee.Date(r.Start),
		End:        lessee.Date(r.End.String),
	}
}

type enterpriseRow struct {
	OrgNr      string `db:"orgnr"`
	Name       string `db:"name"`
	FleetOwner bool   `db:"fleet_owner"`
}

type termsRow struct {
	OrgNr      string `db:"orgnr"`
	Agreement  string `db:"agreement"`
	Version    string `db:"version"`
	AcceptedAt string `db:"accepted_at"`
}

type delegationRow struct {
	FleetOwner string         `db:"fleet_owner_orgnr"`
	Delegate   string         `db:"delegate_orgnr"`
	ValidFrom  string         `db:"valid_from"`
	ValidTo    sql.NullString `db:"valid_to"`
	RevokedAt  sql.NullString `db:"revoked_at"`
}

// loadState locks the vehicles named by keys (by VIN or registration number)
// and loads them with their periods, the enterprises of keys.OrgNrs with
// their terms, and the delegations those enterprises give or hold.
func (s *Store) loadState(ctx context.Context, tx *sqlx.Tx, keys lessee.Keys) (*lessee.State, error) {
	st := lessee.NewState()

	// Resolve VINs first, then lock in VIN order: two chunks locking the same
	// vehicles then queue instead of deadlocking.
	var vins []string
	if err := selectIn(ctx, tx, &vins, `SELECT vin FROM vehicles WHERE vin IN (?)`, keys.VINs); err != nil {
		return nil, fmt.Errorf("load vehicles: %w", err)
	}
	if err := selectIn(ctx, tx, &vins, `SELECT vin FROM vehicles WHERE registration_number IN (?)`, keys.RegNumbers); err != nil {
		return nil, fmt.Errorf("load vehicles: %w", err)
	}
	vins = dedupe(vins)
	slices.Sort(vins)
	var vehicles []vehicleRow
	if err := selectIn(ctx, tx, &vehicles, `SELECT vin, registration_number, owner_orgnr, owner_since
		FROM vehicles WHERE vin IN (?) ORDER BY vin`+s.forUpdate(), vins); err != nil {
		return nil, fmt.Errorf("load vehicles: %w", err)
	}
	for _, v := range vehicles {
		st.Vehicles[v.VIN] = &lessee.Vehicle{
			VIN:                v.VIN,
			RegistrationNumber: v.RegistrationNumber,
			Owner:              v.Owner,
			OwnerSince:         lessee.Date(v.OwnerSince),
		}
		st.ByReg[v.RegistrationNumber] = v.VIN
	}
	var periods []periodRow
	if err := selectIn(ctx, tx, &periods, `SELECT id, vin, lessee_id, lessee_name, start_date, end_date
		FROM lessee_periods WHERE vin IN (?)`, vins); err != nil {
		return nil, fmt.Errorf("load lessee periods: %w", err)
	}
	sortPeriods(periods)
	for _, p := range periods {
		if v := st.Vehicles[p.VIN]; v != nil {
			v.Periods = append(v.Periods, p.period())
		}
	}

	if err := loadEnterprises(ctx, tx, st, keys.OrgNrs); err != nil {
		return nil, err
	}
	return st, nil
}

// sortPeriods orders periods by vehicle, then start date, then id, so each
// vehicle's history reads oldest first whatever order batches returned.
func sortPeriods(ps []periodRow) {
	slices.SortFunc(ps, func(a, b periodRow) int {
		if a.VIN != b.VIN {
			return cmpString(a.VIN, b.VIN)
		}
		if a.Start != b.Start {
			return cmpString(a.Start, b.Start)
		}
		return cmpString(a.ID, b.ID)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadEnterprises fills st with the enterprises of orgnrs, their terms, and
// the delegations in which any of them is fleet owner or delegate.
func loadEnterprises(ctx context.Context, q queryer, st *lessee.State, orgnrs []string) error {
	var ents []enterpriseRow
	if err := selectIn(ctx, q, &ents, `SELECT orgnr, name, fleet_owner FROM enterprises WHERE orgnr IN (?)`, orgnrs); err != nil {
		return fmt.Errorf("load enterprises: %w", err)
	}
	for _, e := range ents {
		st.Enterprises[e.OrgNr] = &lessee.Enterprise{OrgNr: e.OrgNr, Name: e.Name, FleetOwner: e.FleetOwner}
	}
	var terms []termsRow
	if err := selectIn(ctx, q, &terms, `SELECT orgnr, agreement, version, accepted_at
		FROM terms_acceptances WHERE orgnr IN (?)`, orgnrs); err != nil {
		return fmt.Errorf("load terms: %w", err)
	}
	slices.SortFunc(terms, func(a, b termsRow) int { return cmpString(a.AcceptedAt, b.AcceptedAt) })
	for _, t := range terms {
		e := st.Enterprises[t.OrgNr]
		if e == nil {
			continue
		}
		at, err := parseTime(t.AcceptedAt)
		if err != nil {
			return fmt.Errorf("load terms: %w", err)
		}
		e.Terms = append(e.Terms, lessee.Acceptance{
			OrgNr: t.OrgNr, Agreement: lessee.Agreement(t.Agreement), Version: t.Version, AcceptedAt: at,
		})
	}

	var dels []delegationRow
	const cols = `SELECT fleet_owner_orgnr, delegate_orgnr, valid_from, valid_to, revoked_at FROM delegations`
	if err := selectIn(ctx, q, &dels, cols+` WHERE fleet_owner_orgnr IN (?)`, orgnrs); err != nil {
		return fmt.Errorf("load delegations: %w", err)
	}
	if err := selectIn(ctx, q, &dels, cols+` WHERE delegate_orgnr IN (?)`, orgnrs); err != nil {
		return fmt.Errorf("load delegations: %w", err)
	}
	slices.SortFunc(dels, func(a, b delegationRow) int {
		if c := cmpString(a.FleetOwner, b.FleetOwner); c != 0 {
			return c
		}
		if c := cmpString(a.Delegate, b.Delegate); c != 0 {
			return c
		}
		return cmpString(a.ValidFrom, b.ValidFrom)
	})
	dels = slices.CompactFunc(dels, func(a, b delegationRow) bool {
		return a.FleetOwner == b.FleetOwner && a.Delegate == b.Delegate && a.ValidFrom == b.ValidFrom
	})
	for _, d := range dels {
		del := lessee.Delegation{
			FleetOwner: d.FleetOwner,
			Delegate:   d.Delegate,
			ValidFrom:  lessee.Date(d.ValidFrom),
			ValidTo:    lessee.Date(d.ValidTo.String),
		}
		if d.RevokedAt.Valid {
			at, err := parseTime(d.RevokedAt.String)
			if err != nil {
				return fmt.Errorf("load delegations: %w", err)
			}
			del.RevokedAt = &at
		}
		k := [2]string{d.FleetOwner, d.Delegate}
		st.Delegations[k] = append(st.Delegations[k], del)
	}
	return nil
}

// writeMutations applies the registry writes of applied outcomes in row
// order, since a later row may close the period an earlier one opened.
func writeMutations(ctx context.Context, tx *sqlx.Tx, outcomes []lessee.Outcome) error {
	ordered := slices.Clone(outcomes)
	slices.SortFunc(ordered, func(a, b lessee.Outcome) int { return a.Index - b.Index })
	for _, o := range ordered {
		if o.Status != lessee.StatusApplied {
			continue
		}
		m := o.Mutation
		vin := m.VIN
		if vin == "" {
			vin = o.VIN
		}
		switch m.Kind {
		case lessee.MutNone:
		case lessee.MutOpen:
			id := m.Period.ID
			if id == "" {
				id = o.ChangeID
			}
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO lessee_periods
				(id, vin, lessee_id, lessee_name, start_date, end_date) VALUES (?, ?, ?, ?, ?, ?)`),
				id, vin, m.Period.LesseeID, m.Period.LesseeName, string(m.Period.Start), nullDate(m.Period.End))
			if err != nil {
				return fmt.Errorf("row %d: open lessee period: %w", o.Line, err)
			}
		case lessee.MutClose:
			res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE lessee_periods SET end_date = ? WHERE id = ? AND vin = ?`),
				nullDate(m.Period.End), m.Period.ID, vin)
			if err != nil {
				return fmt.Errorf("row %d: close lessee period: %w", o.Line, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("row %d: close lessee period: %w", o.Line, err)
			} else if n != 1 {
				return fmt.Errorf("row %d: close lessee period %s: %w", o.Line, m.Period.ID, ErrNotFound)
			}
		default:
			return fmt.Errorf("row %d: unknown mutation kind %d", o.Line, m.Kind)
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

// writeAudit records every applied outcome.
func writeAudit(ctx context.Context, tx *sqlx.Tx, job lessee.Job, st *lessee.State, outcomes []lessee.Outcome, now string) error {
	var rows [][]any
	for _, o := range outcomes {
		if o.Status != lessee.StatusApplied {
			continue
		}
		before, err := periodJSON(o.Before)
		if err != nil {
			return fmt.Errorf("row %d: audit: %w", o.Line, err)
		}
		after, err := periodJSON(o.After)
		if err != nil {
			return fmt.Errorf("row %d: audit: %w", o.Line, err)
		}
		vin := firstNonEmpty(o.VIN, o.Mutation.VIN, o.Echo.VIN)
		reg := o.Echo.RegistrationNumber
		if v := st.Vehicles[vin]; v != nil {
			reg = v.RegistrationNumber
		}
		op := o.Echo.Operation
		switch o.Mutation.Kind {
		case lessee.MutOpen:
			op = string(lessee.OpAdd)
		case lessee.MutClose:
			op = string(lessee.OpRemove)
		}
		var lesseeID, lesseeName string
		if p := firstPeriod(o.After, o.Before); p != nil {
			lesseeID, lesseeName = p.LesseeID, p.LesseeName
		}
		rows = append(rows, []any{
			o.ChangeID, job.ID, o.Line, job.Submitter, firstNonEmpty(o.OnBehalfOf, job.Submitter), job.Key,
			op, vin, reg, lesseeID, lesseeName, before, after, now,
		})
	}
	err := insertRows(ctx, tx, `INSERT INTO audit_log (change_id, job_id, row_line, submitter, on_behalf_of,
		file_key, operation, vin, registration_number, lessee_id, lessee_name, before_json, after_json, created_at)`,
		"", rows)
	if err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func firstPeriod(ps ...*lessee.Period) *lessee.Period {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// writeResults stores one result per outcome.
func writeResults(ctx context.Context, tx *sqlx.Tx, jobID string, outcomes []lessee.Outcome) error {
	rows := make([][]any, 0, len(outcomes))
	for _, o := range outcomes {
		rows = append(rows, []any{
			jobID, o.Index, o.Line, o.Echo.Reference, o.Echo.Operation, o.Echo.RegistrationNumber,
			o.Echo.VIN, o.Echo.Lessee, string(o.Status), string(o.Code), o.Message, o.ChangeID,
		})
	}
	err := insertRows(ctx, tx, `INSERT INTO row_results (job_id, row_index, row_line, reference, operation,
		registration_number, vin, lessee, status, code, message, change_id)`, "", rows)
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
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
	codesJSON, err := encodeJSON(codes)
	if err != nil {
		return fmt.Errorf("advance job: %w", err)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE jobs
		SET rows_done = ?, applied = ?, unchanged = ?, rejected = ?, codes = ?, updated_at = ?
		WHERE id = ? AND rows_done = ?`),
		job.RowsDone+len(outcomes), applied, unchanged, rejected, codesJSON, now, job.ID, job.RowsDone)
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

type resultRow struct {
	Index              int    `db:"row_index"`
	Line               int    `db:"row_line"`
	Reference          string `db:"reference"`
	Operation          string `db:"operation"`
	RegistrationNumber string `db:"registration_number"`
	VIN                string `db:"vin"`
	Lessee             string `db:"lessee"`
	Status             string `db:"status"`
	Code               string `db:"code"`
	Message            string `db:"message"`
	ChangeID           string `db:"change_id"`
}

// resultPage is how many results Results reads per query. It reads in pages
// so that no cursor stays open while fn runs (fn may upload to S3).
const resultPage = 1000

// Results calls fn with the stored outcomes of a job in row order: Index,
// Line, Echo, Status, Code, Message and ChangeID are filled. An error from
// fn stops the iteration and is returned as is.
func (s *Store) Results(ctx context.Context, jobID string, fn func(lessee.Outcome) error) error {
	after := -1
	for {
		var rows []resultRow
		err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT row_index, row_line, reference, operation,
			registration_number, vin, lessee, status, code, message, change_id
			FROM row_results WHERE job_id = ? AND row_index > ? ORDER BY row_index LIMIT ?`),
			jobID, after, resultPage)
		if err != nil {
			return fmt.Errorf("results of job %s: %w", jobID, err)
		}
		for _, r := range rows {
			o := lessee.Outcome{
				Index: r.Index,
				Line:  r.Line,
				Echo: lessee.Echo{
					Reference:          r.Reference,
					Operation:          r.Operation,
					RegistrationNumber: r.RegistrationNumber,
					VIN:                r.VIN,
					Lessee:             r.Lessee,
				},
				Status:   lessee.Status(r.Status),
				Code:     lessee.Code(r.Code),
				Message:  r.Message,
				ChangeID: r.ChangeID,
			}
			if err := fn(o); err != nil {
				return err
			}
			after = r.Index
		}
		if len(rows) < resultPage {
			return nil
		}
	}
}

// errIsNotFound reports whether err is a missing row.
func errIsNotFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }
