// Package gen generates deterministic synthetic data for tests and
// benchmarks: a registry (enterprises with roles and terms, vehicles with
// owners and lessee periods, delegations to third parties) in the CSV format
// of `lessee registry import`, and change files with a realistic mix of
// outcomes in the canonical change-file format.
//
// The same seed and configuration always give byte-identical files. Every
// organisation number and national identity number generated has valid
// check digits (package ident verifies each one as it is made), so rows are
// rejected only where the generator means them to be.
//
// Change files carry their intended outcome in the reference column, as
// "R0000001-applied", "R0000002-unchanged" or "R0000003-LESSEE_CONFLICT":
// the receipt echoes references, so a test or benchmark can check every
// row's outcome against the intent without a second source of truth.
// The intent assumes the file is processed once, on a registry freshly
// imported from the same Registry, on or after 2025-01-01.
package gen
