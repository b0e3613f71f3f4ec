package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// PeriodsPlan returns the database's plan for the query that loads a
// chunk's lessee periods, for one vehicle. On PostgreSQL sequential scans
// are disabled first, so that the plan shows whether an index can serve the
// query at all, whatever a small test table's statistics favour.
func (s *Store) PeriodsPlan(ctx context.Context) (string, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }()
	var lines []string
	if s.Dialect() == DialectPostgres {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return "", err
		}
		err = tx.SelectContext(ctx, &lines, "EXPLAIN "+periodsQueryPG, []string{"V"}, []string{"2024-01-01"})
	} else {
		var rows []struct {
			ID, Parent, NotUsed int
			Detail              string
		}
		err = tx.SelectContext(ctx, &rows, "EXPLAIN QUERY PLAN "+periodsQuerySQLite, `[["V","2024-01-01"]]`)
		for _, r := range rows {
			lines = append(lines, r.Detail)
		}
	}
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// MigrateTo migrates s up or down to version.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	p, err := s.migrations(ctx)
	if err != nil {
		return err
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return err
	}
	if version < current {
		_, err = p.DownTo(ctx, version)
	} else {
		_, err = p.UpTo(ctx, version)
	}
	return err
}

// Exec runs one statement on the store's database directly, as an
// operator's psql would: for tests of what the schema refuses and of what
// the code must notice.
func (s *Store) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(query), args...)
	return err
}
