-- The registry: enterprises and their accepted terms, vehicles with their
-- owner and lessee periods, and fleet owners' delegations to third parties.

-- +goose Up
CREATE TABLE enterprises (
    orgnr       TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    fleet_owner BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE terms_acceptances (
    orgnr       TEXT NOT NULL REFERENCES enterprises (orgnr),
    agreement   TEXT NOT NULL CHECK (agreement IN ('lessee_api', 'third_party')),
    version     TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    PRIMARY KEY (orgnr, agreement, version)
);

CREATE TABLE vehicles (
    vin                 TEXT PRIMARY KEY,
    registration_number TEXT NOT NULL UNIQUE,
    owner_orgnr         TEXT NOT NULL REFERENCES enterprises (orgnr),
    owner_since         TEXT NOT NULL
);

CREATE INDEX vehicles_owner_orgnr_idx ON vehicles (owner_orgnr);

CREATE TABLE lessee_periods (
    id          TEXT PRIMARY KEY,
    vin         TEXT NOT NULL REFERENCES vehicles (vin),
    lessee_id   TEXT NOT NULL,
    lessee_name TEXT NOT NULL DEFAULT '',
    start_date  TEXT NOT NULL,
    end_date    TEXT NULL,
    CHECK (end_date IS NULL OR end_date >= start_date)
);

CREATE INDEX lessee_periods_vin_start_idx ON lessee_periods (vin, start_date);

CREATE TABLE delegations (
    fleet_owner_orgnr TEXT NOT NULL REFERENCES enterprises (orgnr),
    delegate_orgnr    TEXT NOT NULL REFERENCES enterprises (orgnr),
    valid_from        TEXT NOT NULL,
    valid_to          TEXT NULL,
    revoked_at        TEXT NULL,
    PRIMARY KEY (fleet_owner_orgnr, delegate_orgnr, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE INDEX delegations_delegate_idx ON delegations (delegate_orgnr);

-- +goose Down
DROP TABLE delegations;
DROP TABLE lessee_periods;
DROP TABLE vehicles;
DROP TABLE terms_acceptances;
DROP TABLE enterprises;
