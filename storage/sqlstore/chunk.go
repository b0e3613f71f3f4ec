package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
	w := &chunkTx{tx: tx}
	if s.dialect == DialectPostgres {
		w.conn = conn
	}

	job, err := s.getJob(ctx, tx, jobID, true)
	if err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if job.RowsDone != checkpoint {
		return fmt.Errorf("apply chunk: job %s has %d rows done, chunk starts at %d: %w",
			jobID, job.RowsDone, checkpoint, ErrCheckpointMoved)
	}
	st, err := s.loadState(ctx, w, keys)
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
	if err := w.writeMutations(ctx, outcomes); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	now := formatTime(s.now())
	if err := w.writeAudit(ctx, job, st, outcomes, now); err != nil {
		return fmt.Errorf("apply chunk: %w", err)
	}
	if err := w.writeResults(ctx, jobID, outcomes); err != nil {
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

// chunkTx writes a chunk's rows inside its transaction: with COPY on
// PostgreSQL (conn set), with multi-row INSERTs on SQLite, where the
// database is in-process and a statement costs no round trip.
type chunkTx struct {
	tx   *sqlx.Tx
	conn *sqlx.Conn // PostgreSQL only: the connection tx runs on
}

// pgx runs fn with the pgx connection under tx. database/sql has no COPY
// and scans generically; pgx does both well, and its connection is inside
// tx, which database/sql leaves idle between statements.
func (w *chunkTx) pgx(fn func(*pgx.Conn) error) error {
	return w.conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", dc)
		}
		return fn(pc.Conn())
	})
}

// insert writes rows (each with one value per column) into table.
func (w *chunkTx) insert(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if w.conn == nil {
		return insertRows(ctx, w.tx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+")", "", rows)
	}
	return w.pgx(func(c *pgx.Conn) error {
		n, err := c.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table, err)
		}
		if n != int64(len(rows)) {
			return fmt.Errorf("copy into %s: %d of %d rows", table, n, len(rows))
		}
		return nil
	})
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
func (s *Store) loadState(ctx context.Context, w *chunkTx, keys lessee.Keys) (*lessee.State, error) {
	st := lessee.NewState()
	var vehicles []vehicleRow
	var periods []periodRow
	var err error
	if w.conn != nil {
		vehicles, periods, err = w.loadVehiclesPG(ctx, keys)
	} else {
		vehicles, periods, err = loadVehiclesSQLite(ctx, w.tx, keys)
	}
	if err != nil {
		return nil, err
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
	sortPeriods(periods)
	for _, p := range periods {
		if v := st.Vehicles[p.VIN]; v != nil {
			v.Periods = append(v.Periods, p.period())
		}
	}
	if err := loadEnterprises(ctx, w.tx, st, keys.OrgNrs); err != nil {
		return nil, err
	}
	return st, nil
}

// loadVehiclesPG finds and locks the vehicles named by VIN or registration
// number and loads the lessee periods that can matter to the chunk (see
// lessee.Keys.Since), through pgx itself: these are the
// chunk's largest reads, and database/sql's generic scanning cost more than
// the queries. With ORDER BY, FOR UPDATE locks rows in sorted order, so two
// chunks locking the same vehicles queue instead of deadlocking.
func (w *chunkTx) loadVehiclesPG(ctx context.Context, keys lessee.Keys) ([]vehicleRow, []periodRow, error) {
	vins, regs := dedupe(keys.VINs), dedupe(keys.RegNumbers)
	if len(vins)+len(regs) == 0 {
		return nil, nil, nil
	}
	var vehicles []vehicleRow
	var periods []periodRow
	err := w.pgx(func(c *pgx.Conn) error {
		// Not "vin = ANY($1) OR registration_number = ANY($2)": PostgreSQL
		// answers that OR with a scan of every vehicle.
		rows, err := c.Query(ctx, `SELECT vin, registration_number, owner_orgnr, owner_since FROM vehicles
			WHERE vin IN (SELECT unnest($1::text[])
				UNION ALL SELECT vin FROM vehicles WHERE registration_number = ANY($2::text[]))
			ORDER BY vin FOR UPDATE`, vins, regs)
		if err != nil {
			return fmt.Errorf("load vehicles: %w", err)
		}
		var v vehicleRow
		_, err = pgx.ForEachRow(rows, []any{&v.VIN, &v.RegistrationNumber, &v.Owner, &v.OwnerSince}, func() error {
			vehicles = append(vehicles, v)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load vehicles: %w", err)
		}
		found, since := historyKeys(keys, vehicles)
		rows, err = c.Query(ctx, periodsQueryPG, found, since)
		if err != nil {
			return fmt.Errorf("load lessee periods: %w", err)
		}
		var p periodRow
		var end string
		_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.VIN, &p.LesseeID, &p.LesseeName, &p.Start, &end}, func() error {
			p.End = sql.NullString{String: end, Valid: end != ""}
			periods = append(periods, p)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load lessee periods: %w", err)
		}
		return nil
	})
	return vehicles, periods, err
}

// loadVehiclesSQLite is loadVehiclesPG for SQLite, which has no row locks:
// its write transaction holds the database.
func loadVehiclesSQLite(ctx context.Context, tx *sqlx.Tx, keys lessee.Keys) ([]vehicleRow, []periodRow, error) {
	const cols = `SELECT vin, registration_number, owner_orgnr, owner_since FROM vehicles`
	var vehicles []vehicleRow
	if err := selectIn(ctx, tx, &vehicles, cols+` WHERE vin IN (?)`, keys.VINs); err != nil {
		return nil, nil, fmt.Errorf("load vehicles: %w", err)
	}
	if err := selectIn(ctx, tx, &vehicles, cols+` WHERE registration_number IN (?)`, keys.RegNumbers); err != nil {
		return nil, nil, fmt.Errorf("load vehicles: %w", err)
	}
	slices.SortFunc(vehicles, func(a, b vehicleRow) int { return strings.Compare(a.VIN, b.VIN) })
	vehicles = slices.CompactFunc(vehicles, func(a, b vehicleRow) bool { return a.VIN == b.VIN })
	vins, since := historyKeys(keys, vehicles)
	var periods []periodRow
	const per = maxParams / 2
	for len(vins) > 0 {
		n := min(per, len(vins))
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, vins[i], since[i])
		}
		var part []periodRow
		if err := tx.SelectContext(ctx, &part, periodsQuerySQLite(n), args...); err != nil {
			return nil, nil, fmt.Errorf("load lessee periods: %w", err)
		}
		periods = append(periods, part...)
		vins, since = vins[n:], since[n:]
	}
	return vehicles, periods, nil
}

// The periods queries take pairs of a VIN and the date its periods are
// needed from. The COALESCE is the expression of lessee_periods_vin_end_idx
// (an open period's end reads as the last date there is), spelt exactly so
// for the index to serve the queries.
const (
	periodsQueryPG = `SELECT p.id, p.vin, p.lessee_id, p.lessee_name, p.start_date, COALESCE(p.end_date, '')
		FROM unnest($1::text[], $2::text[]) AS k(vin, since)
		JOIN lessee_periods AS p ON p.vin = k.vin AND COALESCE(p.end_date, '9999-12-31') >= k.since`
	periodsSelectSQLite = `SELECT p.id, p.vin, p.lessee_id, p.lessee_name, p.start_date, p.end_date
		FROM k JOIN lessee_periods AS p ON p.vin = k.vin AND COALESCE(p.end_date, '9999-12-31') >= k.since`
)

// periodsQuerySQLite is the periods query for n pairs of parameters.
func periodsQuerySQLite(n int) string {
	var b strings.Builder
	b.WriteString(`WITH k(vin, since) AS (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
	}
	b.WriteString(") ")
	b.WriteString(periodsSelectSQLite)
	return b.String()
}

// historyKeys returns the VIN of each vehicle and the date its periods are
// needed from (see lessee.Keys.Since); "" asks for all of them.
func historyKeys(keys lessee.Keys, vehicles []vehicleRow) (vins, since []string) {
	vins, since = make([]string, len(vehicles)), make([]string, len(vehicles))
	for i, v := range vehicles {
		vins[i], since[i] = v.VIN, string(keys.HistoryFrom(v.VIN, v.RegistrationNumber))
	}
	return vins, since
}

// sortPeriods orders periods by vehicle, then start date, then id, so each
// vehicle's history reads oldest first whatever order batches returned.
func sortPeriods(ps []periodRow) {
	slices.SortFunc(ps, func(a, b periodRow) int {
		if a.VIN != b.VIN {
			return strings.Compare(a.VIN, b.VIN)
		}
		if a.Start != b.Start {
			return strings.Compare(a.Start, b.Start)
		}
		return strings.Compare(a.ID, b.ID)
	})
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
	slices.SortFunc(terms, func(a, b termsRow) int { return strings.Compare(a.AcceptedAt, b.AcceptedAt) })
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
		if c := strings.Compare(a.FleetOwner, b.FleetOwner); c != 0 {
			return c
		}
		if c := strings.Compare(a.Delegate, b.Delegate); c != 0 {
			return c
		}
		return strings.Compare(a.ValidFrom, b.ValidFrom)
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

// periodWrite is the final state of one lessee period a chunk writes.
type periodWrite struct {
	id, vin, lesseeID, lesseeName string
	start, end                    lessee.Date
	line                          int  // row of the last outcome that wrote it
	open                          bool // opened in this chunk: insert, not update
}

// writeMutations applies the registry writes of applied outcomes. Rows are
// folded in row order into each period's final state first, since a later
// row may close the period an earlier one opened or close a period again:
// periods opened in the chunk are inserted as they end up, periods that
// existed before get one update each.
func (w *chunkTx) writeMutations(ctx context.Context, outcomes []lessee.Outcome) error {
	ordered := make([]*lessee.Outcome, 0, len(outcomes))
	for i := range outcomes {
		if outcomes[i].Status == lessee.StatusApplied && outcomes[i].Mutation.Kind != lessee.MutNone {
			ordered = append(ordered, &outcomes[i])
		}
	}
	slices.SortFunc(ordered, func(a, b *lessee.Outcome) int { return a.Index - b.Index })
	var writes []*periodWrite
	byID := map[string]*periodWrite{}
	for _, o := range ordered {
		m := o.Mutation
		vin := firstNonEmpty(m.VIN, o.VIN)
		switch m.Kind {
		case lessee.MutOpen:
			id := firstNonEmpty(m.Period.ID, o.ChangeID)
			if byID[id] != nil {
				return fmt.Errorf("row %d: open lessee period %s: opened twice in one chunk", o.Line, id)
			}
			p := &periodWrite{id: id, vin: vin, lesseeID: m.Period.LesseeID, lesseeName: m.Period.LesseeName,
				start: m.Period.Start, end: m.Period.End, line: o.Line, open: true}
			byID[id] = p
			writes = append(writes, p)
		case lessee.MutClose:
			p := byID[m.Period.ID]
			if p == nil {
				p = &periodWrite{id: m.Period.ID, vin: vin}
				byID[p.id] = p
				writes = append(writes, p)
			} else if p.vin != vin {
				return fmt.Errorf("row %d: close lessee period %s: %w", o.Line, m.Period.ID, ErrNotFound)
			}
			p.end, p.line = m.Period.End, o.Line
		default:
			return fmt.Errorf("row %d: unknown mutation kind %d", o.Line, m.Kind)
		}
	}
	var inserts [][]any
	var closes []*periodWrite
	for _, p := range writes {
		if p.open {
			inserts = append(inserts, []any{p.id, p.vin, p.lesseeID, p.lesseeName, string(p.start), nullDate(p.end)})
		} else {
			closes = append(closes, p)
		}
	}
	if err := w.insert(ctx, "lessee_periods", []string{"id", "vin", "lessee_id", "lessee_name", "start_date", "end_date"}, inserts); err != nil {
		return fmt.Errorf("open lessee periods: %w", err)
	}
	return w.closePeriods(ctx, closes)
}

// closePeriods sets the end date of periods that existed before the chunk,
// a batch per statement, and fails with ErrNotFound unless every one
// matched its id and vehicle.
func (w *chunkTx) closePeriods(ctx context.Context, closes []*periodWrite) error {
	const per = maxParams / 3
	for len(closes) > 0 {
		batch := closes[:min(per, len(closes))]
		closes = closes[len(batch):]
		var query string
		var args []any
		if w.conn != nil {
			ids, vins, ends := make([]string, len(batch)), make([]string, len(batch)), make([]*string, len(batch))
			for i, p := range batch {
				ids[i], vins[i] = p.id, p.vin
				if p.end != "" {
					ends[i] = (*string)(&p.end)
				}
			}
			// Matched on id alone, so that PostgreSQL finds each period by
			// its primary key (given "AND p.vin = v.vin" it chose the VIN
			// index and read the vehicle's whole history per row); the
			// vehicle is checked on the rows returned instead.
			query = `UPDATE lessee_periods AS p SET end_date = v.end_date
				FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, vin, end_date)
				WHERE p.id = v.id
				RETURNING p.vin = v.vin`
			args = []any{ids, vins, ends}
			if err := w.updateChecked(ctx, query, args, len(batch), batch[0].line); err != nil {
				return err
			}
			continue
		} else {
			var b strings.Builder
			b.WriteString(`WITH v(id, vin, end_date) AS (VALUES `)
			for i, p := range batch {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, CAST(? AS TEXT))")
				args = append(args, p.id, p.vin, nullDate(p.end))
			}
			b.WriteString(`) UPDATE lessee_periods SET end_date = v.end_date FROM v
				WHERE lessee_periods.id = v.id AND lessee_periods.vin = v.vin`)
			query = b.String()
		}
		res, err := w.tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("close lessee periods: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("close lessee periods: %w", err)
		}
		if n != int64(len(batch)) {
			return fmt.Errorf("close lessee periods: %d of %d found (first at row %d): %w", n, len(batch), batch[0].line, ErrNotFound)
		}
	}
	return nil
}

// updateChecked runs a closePeriods update that returns, per period
// updated, whether its vehicle matched, and fails with ErrNotFound unless
// all want periods were updated on their vehicles.
func (w *chunkTx) updateChecked(ctx context.Context, query string, args []any, want, firstLine int) error {
	rows, err := w.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("close lessee periods: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var sameVehicle bool
		if err := rows.Scan(&sameVehicle); err != nil {
			return fmt.Errorf("close lessee periods: %w", err)
		}
		if sameVehicle {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("close lessee periods: %w", err)
	}
	if n != want {
		return fmt.Errorf("close lessee periods: %d of %d found (first at row %d): %w", n, want, firstLine, ErrNotFound)
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
func (w *chunkTx) writeAudit(ctx context.Context, job lessee.Job, st *lessee.State, outcomes []lessee.Outcome, now string) error {
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
	err := w.insert(ctx, "audit_log", []string{"change_id", "job_id", "row_line", "submitter", "on_behalf_of",
		"file_key", "operation", "vin", "registration_number", "lessee_id", "lessee_name", "before_json", "after_json", "created_at"},
		rows)
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
// so that no cursor stays open while fn runs (fn may upload to S3), and in
// pages this large so that a million rows cost a hundred queries.
const resultPage = 10000

// Results calls fn with the stored outcomes of a job in row order: Index,
// Line, Echo, Status, Code, Message and ChangeID are filled. An error from
// fn stops the iteration and is returned as is. The next page is read
// while fn works through the current one, so that a receipt waits for the
// database only for its first page.
func (s *Store) Results(ctx context.Context, jobID string, fn func(lessee.Outcome) error) error {
	ctx, cancel := context.WithCancel(ctx)
	reading := make(chan struct{})
	defer func() {
		cancel()
		<-reading // no query of this call outlives it
	}()
	type page struct {
		rows []resultRow
		err  error
	}
	pages := make(chan page, 1)
	free := make(chan []resultRow, 2) // pages fn is done with, to read into again
	free <- make([]resultRow, 0, resultPage)
	free <- make([]resultRow, 0, resultPage)
	go func() {
		defer close(reading)
		defer close(pages)
		after := -1
		for {
			var buf []resultRow
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			rows, err := s.resultPage(ctx, jobID, after, buf[:0])
			select {
			case pages <- page{rows, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(rows) < resultPage {
				return
			}
			after = rows[len(rows)-1].Index
		}
	}()
	for p := range pages {
		if p.err != nil {
			return fmt.Errorf("results of job %s: %w", jobID, p.err)
		}
		for _, r := range p.rows {
			if err := fn(r.outcome()); err != nil {
				return err
			}
		}
		free <- p.rows
	}
	return ctx.Err()
}

// resultPage reads the results after row index after, appending to page.
func (s *Store) resultPage(ctx context.Context, jobID string, after int, page []resultRow) ([]resultRow, error) {
	const query = `SELECT row_index, row_line, reference, operation, registration_number, vin, lessee,
		status, code, message, change_id
		FROM row_results WHERE job_id = ? AND row_index > ? ORDER BY row_index LIMIT ?`
	if s.dialect == DialectPostgres {
		return s.resultsPG(ctx, s.db.Rebind(query), jobID, after, page)
	}
	err := s.db.SelectContext(ctx, &page, s.db.Rebind(query), jobID, after, resultPage)
	return page, err
}

func (r resultRow) outcome() lessee.Outcome {
	return lessee.Outcome{
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
}

// resultsPG reads one page of results through pgx, whose scanning into
// strings costs a fraction of database/sql's generic path.
func (s *Store) resultsPG(ctx context.Context, query, jobID string, after int, page []resultRow) ([]resultRow, error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return page, err
	}
	defer conn.Close()
	w := &chunkTx{conn: conn}
	err = w.pgx(func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, query, jobID, after, resultPage)
		if err != nil {
			return err
		}
		var r resultRow
		_, err = pgx.ForEachRow(rows, []any{&r.Index, &r.Line, &r.Reference, &r.Operation, &r.RegistrationNumber,
			&r.VIN, &r.Lessee, &r.Status, &r.Code, &r.Message, &r.ChangeID}, func() error {
			page = append(page, r)
			return nil
		})
		return err
	})
	return page, err
}

// errIsNotFound reports whether err is a missing row.
func errIsNotFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }
