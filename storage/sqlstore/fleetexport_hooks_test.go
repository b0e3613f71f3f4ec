package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// FleetExportRow is a fleet_exports row, for tests.
type FleetExportRow struct {
	Version, ExportedVersion int64
	ChangedAt                string
	ExportedAt               sql.NullString
}

// FleetExport returns the fleet_exports row of orgnr; found is false when
// it has none.
func (s *Store) FleetExport(ctx context.Context, orgnr string) (r FleetExportRow, found bool, err error) {
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT version, exported_version, changed_at, exported_at
		FROM fleet_exports WHERE orgnr = ?`), orgnr).Scan(&r.Version, &r.ExportedVersion, &r.ChangedAt, &r.ExportedAt)
	if errIsNotFound(err) {
		return r, false, nil
	}
	return r, err == nil, err
}

// MarkFleetsChanged runs markFleetsChanged in a transaction of its own.
func (s *Store) MarkFleetsChanged(ctx context.Context, orgnrs []string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := markFleetsChanged(ctx, tx, orgnrs, formatTime(s.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// ExportFleetPlan returns the database's plan for ExportFleet's query. On
// PostgreSQL sequential scans are disabled first, so that the plan shows
// whether indexes can serve the query at all.
func (s *Store) ExportFleetPlan(ctx context.Context) (string, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }()
	args := []any{"2026-03-15", "2026-03-15", "910000004", "2026-03-15"}
	var lines []string
	if s.Dialect() == DialectPostgres {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return "", err
		}
		err = tx.SelectContext(ctx, &lines, tx.Rebind("EXPLAIN "+exportFleetQuery), args...)
	} else {
		var rows []struct {
			ID, Parent, NotUsed int
			Detail              string
		}
		err = tx.SelectContext(ctx, &rows, "EXPLAIN QUERY PLAN "+exportFleetQuery, args...)
		for _, r := range rows {
			lines = append(lines, r.Detail)
		}
	}
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}
