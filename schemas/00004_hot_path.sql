-- The tables every chunk of rows writes, reshaped for bulk ingest.
--
-- No foreign keys on row_results.job_id and lessee_periods.vin: each costs
-- a trigger query per written row (a fifth of a chunk's database time in
-- `lessee bench`), and every writer already holds the parent row: a chunk
-- locks its job and the vehicles whose periods it writes, and the importer
-- writes a vehicle and its period in one transaction. Nothing deletes jobs
-- or vehicles. SQLite cannot drop a constraint, so both tables are rebuilt,
-- with statements that run unchanged on both databases.
--
-- Lessee periods are found by vehicle and end date, an open period's end
-- reading as the last date there is: a chunk loads only the periods still
-- open on, or ending on or after, the earliest date its rows give for each
-- vehicle, so a long history is skipped in the index instead of read.

-- +goose Up
CREATE TABLE lessee_periods_new (
    id          TEXT PRIMARY KEY,
    vin         TEXT NOT NULL,
    lessee_id   TEXT NOT NULL,
    lessee_name TEXT NOT NULL DEFAULT '',
    start_date  TEXT NOT NULL,
    end_date    TEXT NULL,
    CHECK (end_date IS NULL OR end_date >= start_date)
);
INSERT INTO lessee_periods_new (id, vin, lessee_id, lessee_name, start_date, end_date)
    SELECT id, vin, lessee_id, lessee_name, start_date, end_date FROM lessee_periods;
DROP TABLE lessee_periods;
ALTER TABLE lessee_periods_new RENAME TO lessee_periods;
CREATE INDEX lessee_periods_vin_end_idx ON lessee_periods (vin, (COALESCE(end_date, '9999-12-31')));

CREATE TABLE row_results_new (
    job_id              TEXT NOT NULL,
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
INSERT INTO row_results_new SELECT job_id, row_index, row_line, reference, operation, registration_number,
    vin, lessee, status, code, message, change_id FROM row_results;
DROP TABLE row_results;
ALTER TABLE row_results_new RENAME TO row_results;

-- +goose Down
CREATE TABLE row_results_old (
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
INSERT INTO row_results_old SELECT job_id, row_index, row_line, reference, operation, registration_number,
    vin, lessee, status, code, message, change_id FROM row_results;
DROP TABLE row_results;
ALTER TABLE row_results_old RENAME TO row_results;

CREATE TABLE lessee_periods_old (
    id          TEXT PRIMARY KEY,
    vin         TEXT NOT NULL REFERENCES vehicles (vin),
    lessee_id   TEXT NOT NULL,
    lessee_name TEXT NOT NULL DEFAULT '',
    start_date  TEXT NOT NULL,
    end_date    TEXT NULL,
    CHECK (end_date IS NULL OR end_date >= start_date)
);
INSERT INTO lessee_periods_old (id, vin, lessee_id, lessee_name, start_date, end_date)
    SELECT id, vin, lessee_id, lessee_name, start_date, end_date FROM lessee_periods;
DROP TABLE lessee_periods;
ALTER TABLE lessee_periods_old RENAME TO lessee_periods;
CREATE INDEX lessee_periods_vin_start_idx ON lessee_periods (vin, start_date);
