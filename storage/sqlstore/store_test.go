package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestMigrate(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		// Already migrated once by the helper: again is a no-op.
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		empty, err := s.RegistryEmpty(ctx)
		if err != nil || !empty {
			t.Fatalf("RegistryEmpty = %v, %v; want true", empty, err)
		}
		jobs, err := s.ListJobs(ctx, 0)
		if err != nil || len(jobs) != 0 {
			t.Fatalf("ListJobs = %v, %v; want none", jobs, err)
		}
	})
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("PlainPath", func(t *testing.T) {
		s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Dialect() != sqlstore.DialectSQLite {
			t.Errorf("Dialect = %q", s.Dialect())
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Memory", func(t *testing.T) {
		s, err := sqlstore.Open(ctx, "sqlite::memory:")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RegistryEmpty(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		if _, err := sqlstore.Open(ctx, ""); err == nil {
			t.Fatal("Open(\"\") succeeded")
		}
	})
	t.Run("ErrMissingDir", func(t *testing.T) {
		if _, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "no", "such", "x.db")); err == nil {
			t.Fatal("Open in a missing directory succeeded")
		}
	})
	t.Run("Postgres", func(t *testing.T) {
		s := sqlstoretest.Postgres(t)
		if s.Dialect() != sqlstore.DialectPostgres {
			t.Errorf("Dialect = %q", s.Dialect())
		}
	})
}

// TestMigrateConcurrent runs migrators of one PostgreSQL schema at once: the
// advisory lock makes one wait for the other instead of both creating tables.
func TestMigrateConcurrent(t *testing.T) {
	url := sqlstoretest.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
}
