package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

const jobColumns = `id, bucket, object_key, object_version, submitter, name, format, size, sha256,
	state, code, message, rows_total, rows_done, applied, unchanged, rejected, codes,
	ignored_columns, processing_date, started, finished, updated_at, mode, dry_run, operations, file_rows,
	attempt, published_attempt, pinned_etag, history, history_removed, uploaded`

// jobRow is a jobs row as stored.
type jobRow struct {
	ID             string         `db:"id"`
	Bucket         string         `db:"bucket"`
	Key            string         `db:"object_key"`
	Version        string         `db:"object_version"`
	Submitter      string         `db:"submitter"`
	Name           string         `db:"name"`
	Format         string         `db:"format"`
	Size           int64          `db:"size"`
	SHA256         string         `db:"sha256"`
	State          string         `db:"state"`
	Code           string         `db:"code"`
	Message        string         `db:"message"`
	RowsTotal      int            `db:"rows_total"`
	RowsDone       int            `db:"rows_done"`
	Applied        int            `db:"applied"`
	Unchanged      int            `db:"unchanged"`
	Rejected       int            `db:"rejected"`
	Codes          string         `db:"codes"`
	IgnoredColumns string         `db:"ignored_columns"`
	ProcessingDate string         `db:"processing_date"`
	Started        string         `db:"started"`
	Finished       sql.NullString `db:"finished"`
	UpdatedAt      string         `db:"updated_at"`
	Mode           string         `db:"mode"`
	DryRun         bool           `db:"dry_run"`
	Operations     string         `db:"operations"`
	FileRows       int            `db:"file_rows"`
	Attempt        int            `db:"attempt"`
	Published      int            `db:"published_attempt"`
	PinnedETag     string         `db:"pinned_etag"`
	History        string         `db:"history"`
	HistoryRemoved sql.NullString `db:"history_removed"`
	Uploaded       string         `db:"uploaded"`
}

func (r jobRow) job() (lessee.Job, error) {
	j := lessee.Job{
		ID:             r.ID,
		Bucket:         r.Bucket,
		Key:            r.Key,
		Version:        r.Version,
		Submitter:      r.Submitter,
		Name:           r.Name,
		Format:         lessee.Format(r.Format),
		Size:           r.Size,
		SHA256:         r.SHA256,
		State:          lessee.JobState(r.State),
		Code:           lessee.Code(r.Code),
		Message:        r.Message,
		RowsTotal:      r.RowsTotal,
		RowsDone:       r.RowsDone,
		Applied:        r.Applied,
		Unchanged:      r.Unchanged,
		Rejected:       r.Rejected,
		Codes:          map[lessee.Code]int{},
		ProcessingDate: lessee.Date(r.ProcessingDate),
		Mode:           lessee.Mode(r.Mode),
		DryRun:         r.DryRun,
		Operations:     map[lessee.Operation]int{},
		FileRows:       r.FileRows,
		Attempt:        r.Attempt,
		PinnedETag:     r.PinnedETag,
		History:        r.History,
		HistoryRemoved: r.HistoryRemoved.Valid,
	}
	j.PublishedAttempt = r.Published
	if r.Uploaded != "" {
		t, err := parseTime(r.Uploaded)
		if err != nil {
			return lessee.Job{}, fmt.Errorf("job %s: %w", r.ID, err)
		}
		j.Uploaded = t
	}
	if err := json.Unmarshal([]byte(r.Operations), &j.Operations); err != nil {
		return lessee.Job{}, fmt.Errorf("job %s: decode operations: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Codes), &j.Codes); err != nil {
		return lessee.Job{}, fmt.Errorf("job %s: decode codes: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.IgnoredColumns), &j.IgnoredColumns); err != nil {
		return lessee.Job{}, fmt.Errorf("job %s: decode ignored columns: %w", r.ID, err)
	}
	var err error
	if j.Started, err = parseTime(r.Started); err != nil {
		return lessee.Job{}, fmt.Errorf("job %s: %w", r.ID, err)
	}
	if r.Finished.Valid {
		if j.Finished, err = parseTime(r.Finished.String); err != nil {
			return lessee.Job{}, fmt.Errorf("job %s: %w", r.ID, err)
		}
	}
	return j, nil
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// ignoredJSON encodes ignored columns, nil as [].
func ignoredJSON(cols []string) (string, error) {
	if cols == nil {
		cols = []string{}
	}
	return encodeJSON(cols)
}

// BeginJob records j unless a job with its ID exists, and returns the stored
// job. A new job starts in state running (unless j.State says otherwise),
// Started now, and ProcessingDate today in Europe/Oslo unless set, so that
// every retry decides against the same date. An existing job is returned
// unchanged, with its checkpoint (RowsDone) and counts.
func (s *Store) BeginJob(ctx context.Context, j lessee.Job) (lessee.Job, error) {
	if j.ID == "" {
		return lessee.Job{}, errors.New("begin job: empty id")
	}
	now := s.now()
	if j.State == "" {
		j.State = lessee.JobRunning
	}
	if j.Started.IsZero() {
		j.Started = now
	}
	if j.ProcessingDate.IsZero() {
		j.ProcessingDate = lessee.DateOf(now.In(s.oslo))
	}
	codes := j.Codes
	if codes == nil {
		codes = map[lessee.Code]int{}
	}
	codesJSON, err := encodeJSON(codes)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: %w", err)
	}
	ignored, err := ignoredJSON(j.IgnoredColumns)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: %w", err)
	}
	if j.Mode == "" {
		j.Mode = lessee.ModeChanges
	}
	ops := j.Operations
	if ops == nil {
		ops = map[lessee.Operation]int{}
	}
	opsJSON, err := encodeJSON(ops)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: %w", err)
	}
	var uploaded string
	if !j.Uploaded.IsZero() {
		uploaded = formatTime(j.Uploaded)
	}
	var finished sql.NullString
	if !j.Finished.IsZero() {
		finished = sql.NullString{String: formatTime(j.Finished), Valid: true}
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO jobs (`+jobColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`),
		j.ID, j.Bucket, j.Key, j.Version, j.Submitter, j.Name, string(j.Format), j.Size, j.SHA256,
		string(j.State), string(j.Code), j.Message, j.RowsTotal, j.RowsDone, j.Applied, j.Unchanged, j.Rejected,
		codesJSON, ignored, string(j.ProcessingDate), formatTime(j.Started), finished, formatTime(now),
		string(j.Mode), j.DryRun, opsJSON, j.FileRows,
		j.Attempt, j.PublishedAttempt, j.PinnedETag, j.History, nil, uploaded)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: insert: %w", err)
	}
	stored, err := s.getJob(ctx, tx, j.ID, false)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return lessee.Job{}, fmt.Errorf("begin job: commit: %w", err)
	}
	return stored, nil
}

// getJob loads one job, locking its row on PostgreSQL when lock is set.
func (s *Store) getJob(ctx context.Context, q queryer, id string, lock bool) (lessee.Job, error) {
	query := `SELECT ` + jobColumns + ` FROM jobs WHERE id = ?`
	if lock {
		query += s.dialect.forUpdate()
	}
	var r jobRow
	if err := sqlx.GetContext(ctx, q, &r, q.Rebind(query), id); err != nil {
		if errIsNotFound(err) {
			return lessee.Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
		}
		return lessee.Job{}, fmt.Errorf("load job: %w", err)
	}
	return r.job()
}

// Job returns the stored job, or an error wrapping ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (lessee.Job, error) {
	j, err := s.getJob(ctx, s.db, id, false)
	if err != nil {
		return lessee.Job{}, fmt.Errorf("get job: %w", err)
	}
	return j, nil
}

// UpdateJobInfo stores what the first pass over the file learnt: format,
// size, sha256, rows total and ignored columns.
func (s *Store) UpdateJobInfo(ctx context.Context, j lessee.Job) error {
	ignored, err := ignoredJSON(j.IgnoredColumns)
	if err != nil {
		return fmt.Errorf("update job info: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE jobs
		SET format = ?, size = ?, sha256 = ?, rows_total = ?, file_rows = ?, ignored_columns = ?, updated_at = ?
		WHERE id = ?`),
		string(j.Format), j.Size, j.SHA256, j.RowsTotal, j.FileRows, ignored, formatTime(s.now()), j.ID)
	if err != nil {
		return fmt.Errorf("update job info: %w", err)
	}
	return mustAffect(res, "update job info", j.ID)
}

// FinishJob marks the job finished with state, code and message. Only the
// first call takes effect, so that a retried finish keeps the original
// outcome and time.
func (s *Store) FinishJob(ctx context.Context, id string, state lessee.JobState, code lessee.Code, message string) error {
	if state != lessee.JobCompleted && state != lessee.JobRefused {
		return fmt.Errorf("finish job: state %q is not final", state)
	}
	now := formatTime(s.now())
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := s.getJob(ctx, tx, id, true); err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE jobs
		SET state = ?, code = ?, message = ?, finished = ?, updated_at = ?
		WHERE id = ? AND finished IS NULL`),
		string(state), string(code), message, now, now, id)
	if err != nil {
		return fmt.Errorf("finish job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish job: commit: %w", err)
	}
	return nil
}

// ErrFenced is returned to an attempt of a job that a later attempt has
// taken over, or that is finished: it must not publish or finish anything.
// Its code is lessee.ECONFLICT.
var ErrFenced = &lessee.Error{Code: lessee.ECONFLICT, Message: "a later attempt took over the job, or it is finished"}

// ClaimAttempt starts a new attempt of job id and returns its fencing
// token: from now on only this attempt may finish the job (FinishAttempt).
func (s *Store) ClaimAttempt(ctx context.Context, id string) (int, error) {
	var attempt int
	err := s.db.GetContext(ctx, &attempt, s.db.Rebind(`UPDATE jobs SET attempt = attempt + 1, updated_at = ?
		WHERE id = ? RETURNING attempt`), formatTime(s.now()), id)
	if errIsNotFound(err) {
		return 0, fmt.Errorf("claim attempt: job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("claim attempt: %w", err)
	}
	return attempt, nil
}

// FenceAttempt makes attempt the one whose staged receipts become job
// id's, with the refusal code and message it ends with ("" for a completed
// job): from here on the job's end is decided, and any attempt may carry it
// out (publish the receipts, then FinishJob). It fails with ErrFenced
// unless attempt is the job's latest and no attempt was fenced in before:
// of two attempts racing to the end, one wins.
func (s *Store) FenceAttempt(ctx context.Context, id string, attempt int, code lessee.Code, message string) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE jobs
		SET published_attempt = ?, code = ?, message = ?, updated_at = ?
		WHERE id = ? AND attempt = ? AND published_attempt = 0 AND finished IS NULL`),
		attempt, string(code), message, formatTime(s.now()), id, attempt)
	if err != nil {
		return fmt.Errorf("fence attempt: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("fence attempt: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("fence job %s as attempt %d: %w", id, attempt, ErrFenced)
	}
	return nil
}

// SetPinned records the ETag of the job's pinned copy of its upload.
func (s *Store) SetPinned(ctx context.Context, id, etag string) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE jobs SET pinned_etag = ?, updated_at = ? WHERE id = ?`),
		etag, formatTime(s.now()), id)
	if err != nil {
		return fmt.Errorf("set pinned: %w", err)
	}
	return mustAffect(res, "set pinned", id)
}

// SetHistory records that the job's receipts are in folder.
func (s *Store) SetHistory(ctx context.Context, id, folder string) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE jobs SET history = ?, updated_at = ? WHERE id = ?`),
		folder, formatTime(s.now()), id)
	if err != nil {
		return fmt.Errorf("set history: %w", err)
	}
	return mustAffect(res, "set history", id)
}

// NewestPublished returns the newest job (by upload, then start) of
// submitter whose receipts are under name (dry runs apart) and in its
// history folder, or an error wrapping ErrNotFound.
func (s *Store) NewestPublished(ctx context.Context, submitter, name string, dryRun bool) (lessee.Job, error) {
	var r jobRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+jobColumns+` FROM jobs
		WHERE submitter = ? AND name = ? AND dry_run = ? AND history <> ''
		ORDER BY uploaded DESC, started DESC, id DESC LIMIT 1`), submitter, name, dryRun)
	if errIsNotFound(err) {
		return lessee.Job{}, fmt.Errorf("newest published %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return lessee.Job{}, fmt.Errorf("newest published: %w", err)
	}
	return r.job()
}

// ExpiredHistories returns up to limit jobs whose receipts are in their
// history folder and that finished before cutoff, oldest first.
func (s *Store) ExpiredHistories(ctx context.Context, cutoff time.Time, limit int) ([]lessee.Job, error) {
	return s.listJobs(ctx, "expired histories", `SELECT `+jobColumns+` FROM jobs
		WHERE history <> '' AND history_removed IS NULL AND finished < ?
		ORDER BY finished, id LIMIT ?`, formatTime(cutoff), limit)
}

// HistoryRemoved records that the retention sweep removed the job's
// history folder.
func (s *Store) HistoryRemoved(ctx context.Context, id string) error {
	now := formatTime(s.now())
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE jobs SET history_removed = ?, updated_at = ?
		WHERE id = ? AND history_removed IS NULL`), now, now, id)
	if err != nil {
		return fmt.Errorf("history removed: %w", err)
	}
	return nil
}

// ListJobs returns up to limit jobs (100 when limit <= 0), newest first.
func (s *Store) ListJobs(ctx context.Context, limit int) ([]lessee.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.listJobs(ctx, "list jobs", `SELECT `+jobColumns+` FROM jobs
		ORDER BY started DESC, id DESC LIMIT ?`, limit)
}

func (s *Store) listJobs(ctx context.Context, op, query string, args ...any) ([]lessee.Job, error) {
	var rows []jobRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	jobs := make([]lessee.Job, 0, len(rows))
	for _, r := range rows {
		j, err := r.job()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// mustAffect turns an update that matched no row into ErrNotFound.
func mustAffect(res sql.Result, op, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: job %s: %w", op, id, ErrNotFound)
	}
	return nil
}

// JobCounts returns how many jobs are in each state. It reads the job
// table, which every process shares, so its answer is the same whichever
// process asks.
func (s *Store) JobCounts(ctx context.Context) (map[lessee.JobState]int, error) {
	var rows []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT state, COUNT(*) AS n FROM jobs GROUP BY state`); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	counts := make(map[lessee.JobState]int, len(rows))
	for _, r := range rows {
		counts[lessee.JobState(r.State)] = r.N
	}
	return counts, nil
}
