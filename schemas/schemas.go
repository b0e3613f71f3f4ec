// Package schemas holds the versioned SQL migrations of the registry, jobs,
// per-row results and audit log, embedded for goose. Every file runs
// unchanged on SQLite and PostgreSQL: dates are ISO 'YYYY-MM-DD' text,
// timestamps are fixed-width RFC 3339 UTC text (so they sort as text), and
// primary keys are application-made strings, never autoincrement or serial.
// What cannot be written once for both is in GoMigrations.
package schemas

import "embed"

// FS holds the migrations, named NNNNN_name.sql for goose.
//
//go:embed *.sql
var FS embed.FS
