package sqlstore

import (
	"context"
	"strings"

	"github.com/fleetreg/lessee"
)

// RejectedRowsPlan returns SQLite's query plan of a RejectedRows page, for
// tests that check the page is read through an index.
func (s *Store) RejectedRowsPlan(ctx context.Context, jobID string, code lessee.Code) (string, error) {
	query, args := rejectedQuery, []any{jobID}
	if code != "" {
		query, args = query+` AND code = ?`, append(args, string(code))
	}
	query += ` AND row_index > ? ORDER BY row_index LIMIT ?`
	args = append(args, -1, 100)
	var rows []struct {
		ID     int    `db:"id"`
		Parent int    `db:"parent"`
		NotUse int    `db:"notused"`
		Detail string `db:"detail"`
	}
	if err := s.db.SelectContext(ctx, &rows, "EXPLAIN QUERY PLAN "+query, args...); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.Detail + "\n")
	}
	return b.String(), nil
}
