// Package sqlstoretest opens migrated sqlstore.Stores for tests in any
// package: SQLite in a temporary directory always, and PostgreSQL in a fresh
// schema (dropped at cleanup) when TEST_DATABASE_URL is set, for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx" for the admin connection

	"github.com/fleetreg/lessee/storage/sqlstore"
)

// EnvURL names the environment variable holding the PostgreSQL test URL.
const EnvURL = "TEST_DATABASE_URL"

// SkipMessage is the visible reason PostgreSQL subtests skip.
const SkipMessage = EnvURL + " not set: PostgreSQL tests skipped"

// Run runs fn as two subtests, "sqlite" and "postgres", each with its own
// migrated store. The postgres subtest skips, visibly, when TEST_DATABASE_URL
// is not set.
func Run(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a migrated store on a new SQLite file in tb.TempDir(),
// closed at cleanup.
func SQLite(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	return open(tb, "sqlite:"+filepath.Join(tb.TempDir(), "lessee.db"))
}

// Postgres returns a migrated store in a fresh PostgreSQL schema, closed and
// dropped at cleanup. It calls tb.Skip when TEST_DATABASE_URL is not set.
func Postgres(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	return open(tb, PostgresURL(tb))
}

// PostgresURL creates a fresh, empty schema, dropped at cleanup, and returns
// a URL whose connections use it. It calls tb.Skip when TEST_DATABASE_URL is
// not set.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		tb.Skip(SkipMessage)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open admin connection: %v", err)
	}
	tb.Cleanup(func() { _ = admin.Close() })

	schema := "test_" + randomHex(tb, 8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown URL parameters as run-time settings
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens and migrates a store, closing it at cleanup.
func open(tb testing.TB, databaseURL string) *sqlstore.Store {
	tb.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, databaseURL)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random schema name: %v", err)
	}
	return hex.EncodeToString(b)
}
