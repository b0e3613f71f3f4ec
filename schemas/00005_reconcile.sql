-- Reconciling a fleet: the mode of a job (changes or snapshot, real or dry
-- run), a dry run's would-be periods, a snapshot's scratch tables, and the
-- fleet exports waiting to be rewritten.
--
-- dryrun_periods holds, per dry-run job, the final state of every lessee
-- period its rows would have opened or closed: state loading lays them
-- over lessee_periods, so that a later chunk sees what an earlier one
-- would have done, and nothing real is written.
--
-- snapshot_names holds the vehicle identifiers (VINs and registration
-- numbers) a snapshot names, written before any row is applied;
-- snapshot_absent the vehicles of the fleet it leaves out, frozen in
-- registration-number order when the threshold is checked, so that a
-- resumed job removes the same list in the same order; snapshot_seen the
-- vehicles its rows named so far (DUPLICATE_VEHICLE across chunks).
--
-- fleet_exports counts changes per fleet owner; an export is due while
-- version > exported_version.

-- +goose Up
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'changes';
ALTER TABLE jobs ADD COLUMN dry_run BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE jobs ADD COLUMN operations TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN file_rows INTEGER NOT NULL DEFAULT 0;

CREATE INDEX vehicles_owner_reg_idx ON vehicles (owner_orgnr, registration_number);

CREATE TABLE dryrun_periods (
    job_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    vin         TEXT NOT NULL,
    lessee_id   TEXT NOT NULL,
    lessee_name TEXT NOT NULL DEFAULT '',
    start_date  TEXT NOT NULL,
    end_date    TEXT NULL,
    PRIMARY KEY (job_id, id)
);
CREATE INDEX dryrun_periods_vin_idx ON dryrun_periods (job_id, vin);

CREATE TABLE snapshot_names (
    job_id TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE TABLE snapshot_absent (
    job_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    vin    TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE snapshot_seen (
    job_id TEXT NOT NULL,
    vin    TEXT NOT NULL,
    PRIMARY KEY (job_id, vin)
);

CREATE TABLE fleet_exports (
    orgnr            TEXT PRIMARY KEY,
    version          BIGINT NOT NULL DEFAULT 0,
    changed_at       TEXT NOT NULL,
    exported_version BIGINT NOT NULL DEFAULT 0,
    exported_at      TEXT NULL
);

-- +goose Down
DROP TABLE fleet_exports;
DROP TABLE snapshot_seen;
DROP TABLE snapshot_absent;
DROP TABLE snapshot_names;
DROP TABLE dryrun_periods;
DROP INDEX vehicles_owner_reg_idx;
ALTER TABLE jobs DROP COLUMN file_rows;
ALTER TABLE jobs DROP COLUMN operations;
ALTER TABLE jobs DROP COLUMN dry_run;
ALTER TABLE jobs DROP COLUMN mode;
