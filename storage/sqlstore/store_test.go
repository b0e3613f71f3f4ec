package sqlstore_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	ctx := context.Background()
	t.Run("PlainPath", func(t *testing.T) {
		t.Parallel()
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
		t.Parallel()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
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
		// A chunk's transaction holds the one connection: its statements
		// are prepared in it.
		importRegistry(t, s)
		job := beginJob(t, s, "mem")
		rows := []row{{lessee.OpAdd, vin2, person, "2024-05-01"}, {lessee.OpRemove, vin1, "", "2024-05-01"}}
		if err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), decider(job.ID, 0, rows, nil)); err != nil {
			t.Fatal(err)
		}
		if j, _ := s.Job(ctx, job.ID); j.RowsDone != 2 || j.Applied != 2 {
			t.Errorf("job = %+v", j)
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		t.Parallel()
		if _, err := sqlstore.Open(ctx, ""); err == nil {
			t.Fatal("Open(\"\") succeeded")
		}
	})
	t.Run("ErrMissingDir", func(t *testing.T) {
		t.Parallel()
		if _, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "no", "such", "x.db")); err == nil {
			t.Fatal("Open in a missing directory succeeded")
		}
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		s := sqlstoretest.Postgres(t)
		if s.Dialect() != sqlstore.DialectPostgres {
			t.Errorf("Dialect = %q", s.Dialect())
		}
	})
}

// TestMigrateConcurrent runs migrators of one PostgreSQL schema at once: the
// advisory lock makes one wait for the other instead of both creating tables.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
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

// TestMigrationHotPath takes the schema down to before 00004_hot_path and
// up again with data in it: the rows survive both ways, and the foreign keys
// it drops come back with the down migration. The data is written by
// today's code, on today's schema, before the first step down.
func TestMigrationHotPath(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		job := beginJob(t, s, "job-m")
		rows := []row{
			{lessee.OpRemove, vin1, "", "2024-05-01"},
			{lessee.OpAdd, vin2, person, "2024-05-01"},
			{lessee.OpAdd, vinMissing, person, "2024-05-01"},
		}
		if err := s.ApplyChunk(ctx, job.ID, 0, keysFor(rows), decider(job.ID, 0, rows, nil)); err != nil {
			t.Fatal(err)
		}
		if err := s.MigrateTo(ctx, 3); err != nil {
			t.Fatalf("down to 3: %v", err)
		}
		type snapshot struct {
			V1, V2, V3 []lessee.Period
			Results    []lessee.Result
		}
		take := func() snapshot {
			return snapshot{vehicle(t, s, vin1).Periods, vehicle(t, s, vin2).Periods, vehicle(t, s, vin3).Periods, results(t, s, job.ID)}
		}
		orphanPeriod := func() error {
			return s.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, start_date) VALUES (?, ?, ?, ?)`,
				"orphan", vinMissing, person, "2024-01-01")
		}
		if orphanPeriod() == nil {
			t.Fatal("before 00004, a period of an unknown vehicle was stored")
		}
		want := take()
		if len(want.V1) != 1 || len(want.V2) != 1 || len(want.V3) != 1 || len(want.Results) != 3 {
			t.Fatalf("unexpected data before migrating: %+v", want)
		}

		if err := s.MigrateTo(ctx, 4); err != nil {
			t.Fatalf("up to 4: %v", err)
		}
		if got := take(); !reflect.DeepEqual(got, want) {
			t.Errorf("after up:\n%+v\nwant\n%+v", got, want)
		}
		if err := s.MigrateTo(ctx, 3); err != nil {
			t.Fatalf("down to 3 again: %v", err)
		}
		if got := take(); !reflect.DeepEqual(got, want) {
			t.Errorf("after down:\n%+v\nwant\n%+v", got, want)
		}
		if orphanPeriod() == nil {
			t.Error("after down, a period of an unknown vehicle was stored: the foreign key is gone")
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		if got := take(); !reflect.DeepEqual(got, want) {
			t.Errorf("after up again:\n%+v\nwant\n%+v", got, want)
		}
	})
}
