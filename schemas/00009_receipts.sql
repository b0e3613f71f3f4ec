-- Receipts that stay, from bytes that cannot change under a job.
--
-- attempt is the fencing token of a job's attempts: each attempt takes the
-- next number when it starts, and only the attempt holding the latest may
-- finish the job; published_attempt is the attempt whose staged receipts
-- became the job's (copied to its history folder and, when it is the newest
-- job of its name, to the latest receipt keys).
--
-- pinned_etag is the ETag of the private copy of the upload taken at the
-- job's first attempt (pinned/<job_id>); every attempt reads those bytes.
--
-- uploaded is when the upload was made (its modification time, to the
-- second), so that the newest upload under a name shows its receipt under
-- the latest keys, whichever job finishes last.
--
-- history is the job's receipts/<orgnr>/history/<job_id>/ folder once its
-- receipts are there; history_removed the time the retention sweep removed
-- them.

-- +goose Up
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN published_attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN pinned_etag TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN history TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN history_removed TEXT NULL;
ALTER TABLE jobs ADD COLUMN uploaded TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_history_finished_idx ON jobs (finished) WHERE history <> '' AND history_removed IS NULL;
CREATE INDEX jobs_receipt_name_idx ON jobs (submitter, name, uploaded, started);

-- +goose Down
DROP INDEX jobs_receipt_name_idx;
DROP INDEX jobs_history_finished_idx;
ALTER TABLE jobs DROP COLUMN uploaded;
ALTER TABLE jobs DROP COLUMN history_removed;
ALTER TABLE jobs DROP COLUMN history;
ALTER TABLE jobs DROP COLUMN pinned_etag;
ALTER TABLE jobs DROP COLUMN published_attempt;
ALTER TABLE jobs DROP COLUMN attempt;
