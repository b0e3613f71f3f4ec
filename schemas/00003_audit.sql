-- The audit log: one entry per applied change, with who submitted it, on
-- whose behalf, from which file and row, and the lessee state before and
-- after as JSON. It is the registry's own record, so it keeps lessee ids in
-- clear and has no foreign keys: entries outlive anything they mention.

-- +goose Up
CREATE TABLE audit_log (
    change_id           TEXT PRIMARY KEY,
    job_id              TEXT NOT NULL,
    row_line            INTEGER NOT NULL,
    submitter           TEXT NOT NULL,
    on_behalf_of        TEXT NOT NULL,
    file_key            TEXT NOT NULL,
    operation           TEXT NOT NULL,
    vin                 TEXT NOT NULL,
    registration_number TEXT NOT NULL DEFAULT '',
    lessee_id           TEXT NOT NULL DEFAULT '',
    lessee_name         TEXT NOT NULL DEFAULT '',
    before_json         TEXT NOT NULL DEFAULT 'null',
    after_json          TEXT NOT NULL DEFAULT 'null',
    created_at          TEXT NOT NULL
);

CREATE INDEX audit_log_vin_created_idx ON audit_log (vin, created_at);
CREATE INDEX audit_log_created_idx ON audit_log (created_at);
CREATE INDEX audit_log_job_idx ON audit_log (job_id, row_line);

-- +goose Down
DROP TABLE audit_log;
