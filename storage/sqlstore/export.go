package sqlstore

// Fleet exports: which fleets changed since their export was last written
// (table fleet_exports), and the fleet itself, streamed in
// registration-number order for exports/<orgnr>/fleet.csv.
//
// fleet_exports holds one row per enterprise whose fleet changed: version
// counts its changes, exported_version is the highest version an export is
// known to include, changed_at the time of the latest change and
// exported_at that of the latest export. An export is due while version >
// exported_version; DueExports adds the debounce.

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

// markFleetsChanged counts one change to each fleet of orgnrs (duplicates
// and empty strings ignored) at now, a formatTime timestamp: a fleet with no
// row yet gets version 1, any other its version plus one. It runs in the
// caller's transaction, so that the change and its mark commit together;
// the rows are written in orgnr order, so that two transactions marking the
// same fleets queue on PostgreSQL instead of deadlocking. Call it after
// the transaction has locked the vehicles it changes (ApplyChunk's and
// Import's order: vehicles, then fleet_exports rows).
func markFleetsChanged(ctx context.Context, q *sqlx.Tx, orgnrs []string, now string) error {
	orgnrs = dedupe(orgnrs)
	if len(orgnrs) == 0 {
		return nil
	}
	slices.Sort(orgnrs)
	rows := make([][]any, len(orgnrs))
	for i, o := range orgnrs {
		rows[i] = []any{o, 1, now, 0}
	}
	err := insertRows(ctx, q, `INSERT INTO fleet_exports (orgnr, version, changed_at, exported_version)`,
		`ON CONFLICT (orgnr) DO UPDATE SET version = fleet_exports.version + 1, changed_at = excluded.changed_at`, rows)
	if err != nil {
		return fmt.Errorf("mark fleets changed: %w", err)
	}
	return nil
}

// MarkFleetChanged counts one change to the fleet of orgnr, in a
// transaction of its own, for changes made outside ApplyChunk and Import.
func (s *Store) MarkFleetChanged(ctx context.Context, orgnr string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark fleet changed: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := markFleetsChanged(ctx, tx, []string{orgnr}, formatTime(s.now())); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark fleet changed: commit: %w", err)
	}
	return nil
}

// importedFleets returns the owners whose fleets an import changes: the
// owners the file gives its vehicles, the owners those vehicles have in
// the registry before it (a vehicle moved to another owner leaves their
// fleet), and every enterprise of enterprises.csv (its fleet-owner role
// may have changed; DueExports passes over enterprises without the role).
// Call it inside the import's transaction, before the vehicles are
// written.
func importedFleets(ctx context.Context, tx *sqlx.Tx, in registryFiles) ([]string, error) {
	owners := make([]string, 0, len(in.vehicles)+len(in.enterprises))
	vins := make([]string, 0, len(in.vehicles))
	for _, v := range in.vehicles {
		owners = append(owners, v.Owner)
		vins = append(vins, v.VIN)
	}
	for _, e := range in.enterprises {
		owners = append(owners, e.OrgNr)
	}
	if err := selectIn(ctx, tx, &owners, `SELECT DISTINCT owner_orgnr FROM vehicles WHERE vin IN (?)`, vins); err != nil {
		return nil, fmt.Errorf("previous owners: %w", err)
	}
	return dedupe(owners), nil
}

// DueExport names a fleet whose export is due and the change count
// (fleet_exports.version) seen when it was found due; it is the domain's
// type, so that its consumers need not import the store.
type DueExport = lessee.DueExport

// DueExports returns the fleets of fleet owners whose export is due, the
// longest-waiting first (never exported, then by the time of the last
// export). An export is due once the fleet changed since it was last
// exported (version > exported_version) and either
//
//   - it has been quiet since: its latest change is at or before
//     quietSince, or
//   - it keeps changing, but its last export was written at or before
//     exportedBefore (or it was never exported).
//
// A scheduler that passes now minus a quiet period and now minus a maximum
// wait thus writes one export when a burst of changes stops, and at most
// one per maximum wait while it goes on (the first change after a quiet
// spell is exported at once: its fleet's last export is old).
func (s *Store) DueExports(ctx context.Context, quietSince, exportedBefore time.Time) ([]DueExport, error) {
	var rows []struct {
		OrgNr   string `db:"orgnr"`
		Version int64  `db:"version"`
	}
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT f.orgnr, f.version FROM fleet_exports AS f
		JOIN enterprises AS e ON e.orgnr = f.orgnr AND e.fleet_owner = ?
		WHERE f.version > f.exported_version
		AND (f.changed_at <= ? OR f.exported_at IS NULL OR f.exported_at <= ?)
		ORDER BY COALESCE(f.exported_at, ''), f.orgnr`), true, formatTime(quietSince), formatTime(exportedBefore))
	if err != nil {
		return nil, fmt.Errorf("due exports: %w", err)
	}
	out := make([]DueExport, len(rows))
	for i, r := range rows {
		out[i] = DueExport{OrgNr: r.OrgNr, Version: r.Version}
	}
	return out, nil
}

// AgeExports counts one change to every fleet whose export was written
// before dayStart and is otherwise current, and returns how many. An
// export lists the fleet as it is on the day it is written (periods end
// and begin at midnight, vehicles change hands on a date), so the first
// scheduler tick of a day makes yesterday's exports due; the condition
// makes the other processes' ticks that day change nothing.
func (s *Store) AgeExports(ctx context.Context, dayStart time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE fleet_exports
		SET version = version + 1, changed_at = ?
		WHERE exported_at < ? AND version = exported_version`), formatTime(s.now()), formatTime(dayStart))
	if err != nil {
		return 0, fmt.Errorf("age exports: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("age exports: %w", err)
	}
	return int(n), nil
}

// ExportDone records that an export of orgnr's fleet including every
// change up to version was written: exported_version becomes the greater
// of itself and version, exported_at now. An older export finishing late
// never lowers it. A fleet with no changes on record is left alone.
func (s *Store) ExportDone(ctx context.Context, orgnr string, version int64) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE fleet_exports
		SET exported_version = CASE WHEN exported_version < ? THEN ? ELSE exported_version END, exported_at = ?
		WHERE orgnr = ?`), version, version, formatTime(s.now()), orgnr)
	if err != nil {
		return fmt.Errorf("export done: %w", err)
	}
	return nil
}

// exportFleetQuery reads a fleet with the periods open on a day (the
// parameters: day, day, orgnr, day). The vehicles come in order from
// vehicles_owner_reg_idx; each one's open periods from
// lessee_periods_vin_end_idx (the COALESCE is its expression, spelt exactly
// so), the periods that ended by the day skipped in the index.
const exportFleetQuery = `SELECT v.registration_number, v.vin,
		p.id, p.lessee_id, p.lessee_name, p.start_date, p.end_date
	FROM vehicles AS v
	LEFT JOIN lessee_periods AS p ON p.vin = v.vin
		AND COALESCE(p.end_date, '9999-12-31') > ? AND p.start_date <= ?
	WHERE v.owner_orgnr = ? AND v.owner_since <= ?
	ORDER BY v.registration_number`

// ExportFleet calls fn for every vehicle orgnr owns on day (owner_orgnr is
// orgnr and owner_since is on or before day), in registration-number order,
// with the lessee period open that day: begun on or before day, with no end
// or an end after it. Should two periods be open that day, the one that
// began last is given (then the greater id), and the vehicle only once.
//
// It is one query, read as it streams: memory does not grow with the
// fleet. fn must not use the store (an in-memory SQLite store has one
// connection, which the query holds); an error from fn stops the query and
// is returned as it is.
func (s *Store) ExportFleet(ctx context.Context, orgnr string, day lessee.Date, fn func(lessee.FleetVehicle) error) error {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(exportFleetQuery), string(day), string(day), orgnr, string(day))
	if err != nil {
		return fmt.Errorf("export fleet: %w", err)
	}
	defer func() { _ = rows.Close() }() // read only; rows.Err is checked below
	var (
		cur     lessee.FleetVehicle
		period  lessee.Period
		pending bool
		reg     string
		vin     string
		id      sql.NullString
		lid     sql.NullString
		name    sql.NullString
		start   sql.NullString
		end     sql.NullString
	)
	for rows.Next() {
		if err := rows.Scan(&reg, &vin, &id, &lid, &name, &start, &end); err != nil {
			return fmt.Errorf("export fleet: %w", err)
		}
		if pending && vin != cur.VIN {
			if err := fn(cur); err != nil {
				return err
			}
			pending = false
		}
		if !pending {
			cur, pending = lessee.FleetVehicle{RegistrationNumber: reg, VIN: vin}, true
		}
		if !id.Valid {
			continue
		}
		period = lessee.Period{ID: id.String, LesseeID: lid.String, LesseeName: name.String,
			Start: lessee.Date(start.String), End: lessee.Date(end.String)}
		if l := cur.Lessee; l == nil || period.Start > l.Start || (period.Start == l.Start && period.ID > l.ID) {
			p := period
			cur.Lessee = &p
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export fleet: %w", err)
	}
	if pending {
		return fn(cur)
	}
	return nil
}

// FleetOwners returns the organisation numbers of every enterprise with
// the fleet-owner role, in order.
func (s *Store) FleetOwners(ctx context.Context) ([]string, error) {
	var out []string
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(`SELECT orgnr FROM enterprises WHERE fleet_owner = ? ORDER BY orgnr`), true); err != nil {
		return nil, fmt.Errorf("fleet owners: %w", err)
	}
	return out, nil
}
