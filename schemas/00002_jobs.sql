-- Jobs (one per uploaded object version) and their per-row results. A job's
-- rows_done is the checkpoint: the number of data records with a stored
-- result, advanced in the same transaction that writes those results.

-- +goose Up
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    bucket          TEXT NOT NULL DEFAULT '',
    object_key      TEXT NOT NULL DEFAULT '',
    object_version  TEXT NOT NULL DEFAULT '',
    submitter       TEXT NOT NULL DEFAULT '',
    name            TEXT NOT NULL DEFAULT '',
    format          TEXT NOT NULL DEFAULT '',
    size            BIGINT NOT NULL DEFAULT 0,
    sha256          TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'refused')),
    code            TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    rows_total      INTEGER NOT NULL DEFAULT 0,
    rows_done       INTEGER NOT NULL DEFAULT 0,
    applied         INTEGER NOT NULL DEFAULT 0,
    unchanged       INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    codes           TEXT NOT NULL DEFAULT '{}',
    ignored_columns TEXT NOT NULL DEFAULT '[]',
    processing_date TEXT NOT NULL,
    started         TEXT NOT NULL,
    finished        TEXT NULL,
    updated_at      TEXT NOT NULL
);

CREATE INDEX jobs_started_idx ON jobs (started);
CREATE INDEX jobs_state_idx ON jobs (state);
CREATE INDEX jobs_submitter_started_idx ON jobs (submitter, started);

CREATE TABLE row_results (
    job_id              TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    row_index           INTEGER NOT NULL,
    row_line            INTEGER NOT NULL,
    reference           TEXT NOT NULL DEFAULT '',
    operation           TEXT NOT NULL DEFAULT '',
    registration_number TEXT NOT NULL DEFAULT '',
    vin                 TEXT NOT NULL DEFAULT '',
    lessee              TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL CHECK (status IN ('applied', 'unchanged', 'rejected')),
    code                TEXT NOT NULL DEFAULT '',
    message             TEXT NOT NULL DEFAULT '',
    change_id           TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, row_index)
);

-- +goose Down
DROP TABLE row_results;
DROP TABLE jobs;
