-- The job page lists a job's rejected rows a page at a time, all of them or
-- those of one code, in row order: without these a page of a million-row
-- job with few rejections walks the whole job in the primary key. Partial
-- indexes, so applied and unchanged rows, most of a file, cost no index
-- write. Queries must name status = 'rejected' as a literal for SQLite to
-- use them.

-- +goose Up
CREATE INDEX row_results_rejected_idx ON row_results (job_id, row_index) WHERE status = 'rejected';
CREATE INDEX row_results_rejected_code_idx ON row_results (job_id, code, row_index) WHERE status = 'rejected';

-- +goose Down
DROP INDEX row_results_rejected_code_idx;
DROP INDEX row_results_rejected_idx;
