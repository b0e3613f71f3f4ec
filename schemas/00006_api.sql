-- The single-change API: where an audit entry came from, and the answers
-- kept under idempotency keys.
--
-- audit_log.source is 'file' for a row of an uploaded file and 'api' for a
-- call of POST /api/v1/changes, whose request id is kept beside it.
--
-- api_idempotency keeps, per organisation and Idempotency-Key, a hash of
-- the request and the answer given, for 24 hours: a repeat gets the same
-- answer byte for byte. The row is written in the transaction that applies
-- the change, so two requests with one key apply it once.

-- +goose Up
ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT 'file';
ALTER TABLE audit_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';

CREATE TABLE api_idempotency (
    orgnr        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    body         TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    PRIMARY KEY (orgnr, idem_key)
);
CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);

-- +goose Down
DROP TABLE api_idempotency;
ALTER TABLE audit_log DROP COLUMN request_id;
ALTER TABLE audit_log DROP COLUMN source;
