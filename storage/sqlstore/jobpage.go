package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleetreg/lessee"
)

// FindJobs returns up to limit jobs (100 when limit <= 0), newest first
// (by start, then id), that match every filter given: submitter (an
// organisation number), state, and code, which matches a job refused with
// that code or with rows that got it. With beforeID set it returns the
// jobs after that one in this order (keyset paging: a page costs the same
// however far back it is, and a job started meanwhile shifts nothing); an
// unknown beforeID gives no jobs.
func (s *Store) FindJobs(ctx context.Context, submitter string, state lessee.JobState, code lessee.Code, beforeID string, limit int) ([]lessee.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	var where []string
	var args []any
	if submitter != "" {
		where, args = append(where, "submitter = ?"), append(args, submitter)
	}
	if state != "" {
		where, args = append(where, "state = ?"), append(args, string(state))
	}
	if code != "" {
		// codes is a JSON object of code to count, as encodeJSON writes it:
		// `"CODE":n`. LIKE's wildcards in a code are escaped, and a count
		// of zero does not make a job match.
		key := `%"` + likeEscape(string(code)) + `":`
		where = append(where, `(code = ? OR (codes LIKE ? ESCAPE '\' AND codes NOT LIKE ? ESCAPE '\' AND codes NOT LIKE ? ESCAPE '\'))`)
		args = append(args, string(code), key+"%", key+"0,%", key+"0}%")
	}
	if beforeID != "" {
		// Row values compare (started, id) as the ORDER BY sorts them; an
		// unknown id makes the subquery empty and the comparison NULL.
		where = append(where, "(started, id) < (SELECT started, id FROM jobs WHERE id = ?)")
		args = append(args, beforeID)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY started DESC, id DESC LIMIT ?`
	return s.listJobs(ctx, "find jobs", query, append(args, limit)...)
}

// likeEscape escapes LIKE's wildcards and its escape character, '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// rejectedQuery reads a page of a job's rejected rows. status is a literal:
// SQLite uses a partial index (row_results_rejected_idx, _code_idx) only
// when the query's WHERE names its condition as written.
const rejectedQuery = `SELECT row_index, row_line, reference, operation, registration_number, vin, lessee,
		status, code, message, change_id
		FROM row_results WHERE job_id = ? AND status = 'rejected'`

// RejectedRows returns up to limit rejected rows of a job after row index
// after (-1: from the first), in row order, only those with code when code
// is not empty. A page reads only the rows it returns, through partial
// indexes, so the last page of a million-row job costs what the first does.
func (s *Store) RejectedRows(ctx context.Context, jobID string, code lessee.Code, after, limit int) ([]lessee.Result, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("rejected rows of job %s: limit %d is not positive", jobID, limit)
	}
	query, args := rejectedQuery, []any{jobID}
	if code != "" {
		query, args = query+` AND code = ?`, append(args, string(code))
	}
	query += ` AND row_index > ? ORDER BY row_index LIMIT ?`
	args = append(args, after, limit)
	var rows []resultRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("rejected rows of job %s: %w", jobID, err)
	}
	out := make([]lessee.Result, len(rows))
	for i, r := range rows {
		out[i] = r.result()
	}
	return out, nil
}
