package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

// This file holds what dry runs and snapshots add to a chunk: the overlay
// of a dry run's would-be periods, a snapshot's named vehicles, and the
// scratch tables a snapshot fills before its first chunk (the identifiers
// it names, the frozen list of the fleet's vehicles it leaves out).

// selectJobKeys selects cols of the rows of table whose job_id is jobID
// and whose vin is one of keys. On PostgreSQL the keys are joined as an
// array, one index probe each: "vin = ANY($2)" got a plan made while the
// table was empty (every row of the job, each compared with the whole
// array), which made a snapshot's chunks slower as the job went on. On
// SQLite it is an IN list per batch.
func selectJobKeys[T any](ctx context.Context, q queryer, dest *[]T, table, cols, jobID string, keys []string) error {
	keys = dedupe(keys)
	if len(keys) == 0 {
		return nil
	}
	if q.DriverName() == "pgx" {
		var part []T
		query := `SELECT ` + cols + ` FROM unnest($2::text[]) AS k(vin)
			JOIN ` + table + ` AS t ON t.job_id = $1 AND t.vin = k.vin`
		if err := sqlx.SelectContext(ctx, q, &part, query, jobID, keys); err != nil {
			return err
		}
		*dest = append(*dest, part...)
		return nil
	}
	return selectInBatches(ctx, q, dest, `SELECT `+cols+` FROM `+table+` AS t WHERE t.job_id = ? AND t.vin IN (?)`, []any{jobID}, keys)
}

// overlayDryRun lays a dry run's would-be periods of the vehicles over the
// periods loaded from the registry: a period the dry run closed replaces
// the stored one, a period it opened is added. Periods the history cut-off
// would have left out may come along; they can decide nothing (see
// lessee.Keys.Since), so carrying them is harmless.
func (w *chunkTx) overlayDryRun(ctx context.Context, jobID string, vins []string, periods []periodRow) ([]periodRow, error) {
	var over []periodRow
	if err := selectJobKeys(ctx, w.tx, &over, "dryrun_periods",
		"t.id, t.vin, t.lessee_id, t.lessee_name, t.start_date, t.end_date", jobID, vins); err != nil {
		return nil, fmt.Errorf("load dry-run periods: %w", err)
	}
	if len(over) == 0 {
		return periods, nil
	}
	byID := make(map[string]int, len(periods))
	for i, p := range periods {
		byID[p.ID] = i
	}
	for _, p := range over {
		if i, ok := byID[p.ID]; ok {
			periods[i] = p
			continue
		}
		periods = append(periods, p)
	}
	return periods, nil
}

// writeDryRunPeriods keeps the final state of every period a dry-run chunk
// would have opened or closed, for the later chunks of the same dry run.
// Nothing in lessee_periods changes.
func (w *chunkTx) writeDryRunPeriods(ctx context.Context, jobID string, writes lessee.Writes) error {
	all := slices.Concat(writes.Opened, writes.Closed)
	if len(all) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(all))
	for _, pw := range all {
		p := pw.Period
		rows = append(rows, []any{jobID, p.ID, pw.VIN, p.LesseeID, p.LesseeName, string(p.Start), nullDate(p.End)})
	}
	err := insertRows(ctx, w.tx, `INSERT INTO dryrun_periods (job_id, id, vin, lessee_id, lessee_name, start_date, end_date)`,
		`ON CONFLICT (job_id, id) DO UPDATE SET end_date = excluded.end_date`, rows)
	if err != nil {
		return fmt.Errorf("write dry-run periods: %w", err)
	}
	return nil
}

// loadNamed marks in st the vehicles an earlier chunk of the snapshot named.
func (w *chunkTx) loadNamed(ctx context.Context, jobID string, st *lessee.State) error {
	vins := make([]string, 0, len(st.Vehicles))
	for vin := range st.Vehicles {
		vins = append(vins, vin)
	}
	var named []string
	if err := selectJobKeys(ctx, w.tx, &named, "snapshot_seen", "t.vin", jobID, vins); err != nil {
		return fmt.Errorf("load named vehicles: %w", err)
	}
	for _, vin := range named {
		st.Named[vin] = true
	}
	return nil
}

// writeNamed keeps the vehicles a snapshot chunk named for the first time.
func (w *chunkTx) writeNamed(ctx context.Context, jobID string, vins []string) error {
	rows := make([][]any, 0, len(vins))
	for _, vin := range dedupe(vins) {
		rows = append(rows, []any{jobID, vin})
	}
	if err := insertRows(ctx, w.tx, `INSERT INTO snapshot_seen (job_id, vin)`, `ON CONFLICT (job_id, vin) DO NOTHING`, rows); err != nil {
		return fmt.Errorf("write named vehicles: %w", err)
	}
	return nil
}

// RecordSnapshotNames keeps identifiers (VINs and registration numbers) a
// snapshot names. It is idempotent, so a retried first pass may record a
// batch again.
func (s *Store) RecordSnapshotNames(ctx context.Context, jobID string, names []string) error {
	names = dedupe(names)
	if len(names) == 0 {
		return nil
	}
	rows := make([][]any, len(names))
	for i, n := range names {
		rows[i] = []any{jobID, n}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record snapshot names: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := insertRows(ctx, tx, `INSERT INTO snapshot_names (job_id, name)`, `ON CONFLICT (job_id, name) DO NOTHING`, rows); err != nil {
		return fmt.Errorf("record snapshot names: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record snapshot names: commit: %w", err)
	}
	return nil
}

// fleetWithLessee selects the vehicles fleet owner ? owns on day ? with a
// lessee period in force that day (begun, not ended). Parameters: orgnr,
// day, day, day.
const fleetWithLessee = `FROM vehicles AS v
	WHERE v.owner_orgnr = ? AND v.owner_since <= ?
	AND EXISTS (SELECT 1 FROM lessee_periods AS p
		WHERE p.vin = v.vin AND p.start_date <= ? AND COALESCE(p.end_date, '9999-12-31') > ?)`

// FreezeAbsent lists the vehicles of fleetOwner's fleet with a lessee in
// force on day that the snapshot job names by neither VIN nor
// registration number (see RecordSnapshotNames), in registration-number
// order, and returns how many there are and how many of the fleet's
// vehicles have a lessee in force that day. With list false (the
// submitter may not act for the fleet) the list is left empty.
//
// The list is frozen once a chunk of the job has committed: from then on
// FreezeAbsent changes nothing and returns the list's length with kept
// set, so a resumed job, or a second attempt running beside the first,
// removes the list the first attempt started with. The job's row is
// locked while it decides, so that a chunk cannot commit in between.
func (s *Store) FreezeAbsent(ctx context.Context, jobID, fleetOwner string, day lessee.Date, list bool) (absent, withLessee int, kept bool, err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	job, err := s.getJob(ctx, tx, jobID, true)
	if err != nil {
		return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
	}
	count := func() (int, error) {
		var n int
		err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM snapshot_absent WHERE job_id = ?`), jobID)
		return n, err
	}
	if job.RowsDone > 0 {
		if absent, err = count(); err != nil {
			return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
		}
		return absent, 0, true, nil
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM snapshot_absent WHERE job_id = ?`), jobID); err != nil {
		return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
	}
	d := string(day)
	if list {
		// Two NOT EXISTS, not one with OR, so that each is a primary-key probe.
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO snapshot_absent (job_id, seq, vin)
			SELECT ?, ROW_NUMBER() OVER (ORDER BY v.registration_number, v.vin) - 1, v.vin `+fleetWithLessee+`
			AND NOT EXISTS (SELECT 1 FROM snapshot_names AS n WHERE n.job_id = ? AND n.name = v.vin)
			AND NOT EXISTS (SELECT 1 FROM snapshot_names AS n WHERE n.job_id = ? AND n.name = v.registration_number)`),
			jobID, fleetOwner, d, d, d, jobID, jobID)
		if err != nil {
			return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
		}
		if err := tx.GetContext(ctx, &withLessee, tx.Rebind(`SELECT COUNT(*) `+fleetWithLessee), fleetOwner, d, d, d); err != nil {
			return 0, 0, false, fmt.Errorf("count the fleet: %w", err)
		}
	}
	if absent, err = count(); err != nil {
		return 0, 0, false, fmt.Errorf("freeze absent vehicles: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, false, fmt.Errorf("freeze absent vehicles: commit: %w", err)
	}
	return absent, withLessee, false, nil
}

// AbsentVehicles returns up to limit vehicles of the job's frozen absent
// list from position from on, in list order.
func (s *Store) AbsentVehicles(ctx context.Context, jobID string, from, limit int) ([]lessee.AbsentVehicle, error) {
	var rows []struct {
		Seq                int    `db:"seq"`
		VIN                string `db:"vin"`
		RegistrationNumber string `db:"registration_number"`
	}
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT a.seq, a.vin, COALESCE(v.registration_number, '') AS registration_number
		FROM snapshot_absent AS a LEFT JOIN vehicles AS v ON v.vin = a.vin
		WHERE a.job_id = ? AND a.seq >= ? ORDER BY a.seq LIMIT ?`), jobID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("absent vehicles: %w", err)
	}
	out := make([]lessee.AbsentVehicle, len(rows))
	for i, r := range rows {
		out[i] = lessee.AbsentVehicle{Seq: r.Seq, VIN: r.VIN, RegistrationNumber: r.RegistrationNumber}
	}
	return out, nil
}

// DropScratch removes what a dry run or snapshot kept while it ran. It is
// called once the job's receipt is published; the job's own results stay.
func (s *Store) DropScratch(ctx context.Context, jobID string) error {
	for _, table := range []string{"dryrun_periods", "snapshot_names", "snapshot_absent", "snapshot_seen"} {
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM `+table+` WHERE job_id = ?`), jobID); err != nil {
			return fmt.Errorf("drop %s of job %s: %w", table, jobID, err)
		}
	}
	return nil
}

// AuthorityState loads what the authority check needs of orgnrs: the
// enterprises with their terms and the delegations they give or hold.
func (s *Store) AuthorityState(ctx context.Context, orgnrs []string) (*lessee.State, error) {
	st := lessee.NewState()
	var err error
	if st.Enterprises, err = loadEnterprises(ctx, s.db, orgnrs); err != nil {
		return nil, err
	}
	if err := loadDelegations(ctx, s.db, st, orgnrs); err != nil {
		return nil, err
	}
	return st, nil
}
