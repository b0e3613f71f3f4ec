// Package bench measures the real ingestion path end to end and, in the same
// run, the baselines it is judged against.
//
// Run generates a registry and a change file (package gen), starts the
// lessee binary's `serve` as a child process against real PostgreSQL and
// Redis with its embedded S3 endpoint, uploads the file and times it to its
// receipt: upload, the first pass (queue, download, scan), the second pass
// (read, validate, apply, in chunks) and the receipt. The child's peak
// resident set (VmHWM) is read from /proc. While the large file runs, a
// small file from another submitter is uploaded and timed to its receipt.
// Every receipt row is checked against the outcome gen wrote into its
// reference ("R0000001-applied"), so a fast wrong run cannot pass.
//
// The baselines run in the bench process on fresh PostgreSQL schemas with
// the same registry and rows:
//
//   - naive: one transaction per row with one lookup per row (Naive), the
//     same schema, decisions and bookkeeping as the real path;
//   - floor: PostgreSQL COPY of the change rows into an equivalent table
//     (CopyFloor), the least any path that stores the rows can cost;
//   - write floor: what the first end-to-end run wrote (its periods,
//     results, audit entries and end dates), read back from its registry
//     and written into a fresh registry of the project's schema, every
//     index and constraint, in one transaction by the fastest bulk path
//     (WriteFloor): the least the database must do to store the outcome;
//   - parse only: encoding/csv over the CSV file, excelize's streaming row
//     reader over the XLSX file.
//
// With Config.SQLite (`lessee bench --embedded`) the files run on the
// embedded SQLite registry instead, the write floor is SQLite's (prepared
// multi-row INSERTs) and the PostgreSQL baselines are left out.
//
// RunSnapshot (`lessee bench --snapshot`) measures reconciling a fleet
// instead: a registry whose largest fleet has Config.Fleet vehicles, a
// change file for that fleet of the snapshot's row count and the snapshot,
// each through its own `lessee serve` on its own registry (PostgreSQL, or
// embedded SQLite), then `lessee export` of the fleet and, optionally, of a
// fleet of Config.ExportFleet vehicles. Its baseline is the change file:
// the snapshot's time is reported as a ratio of it. Every receipt line is
// checked against the operation gen meant ("S0000001-keep"), and every
// export line against the lessee the vehicle should have.
//
// Every run uses its own PostgreSQL schema, dropped afterwards, and flushes
// the Redis database it is given, so give it one nothing else uses.
package bench
