package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetreg/lessee/storage/sqlstore"
)

// databaseFlags are the flags of commands that only need the database.
type databaseFlags struct {
	Data         string
	DatabaseURL  string
	TestRegistry bool
}

func (d *databaseFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.Data, "data", defaultServeConfig().Data, "directory of the embedded SQLite registry")
	fs.StringVar(&d.DatabaseURL, "database-url", "", "PostgreSQL URL; empty uses SQLite under --data")
	fs.BoolVar(&d.TestRegistry, "test-registry", false, "accept synthetic test identity numbers")
}

// checkDatabaseURL refuses a --database-url that is not PostgreSQL's.
func checkDatabaseURL(u string) error {
	if u == "" || strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return nil
	}
	return fmt.Errorf("--database-url must be a PostgreSQL URL (postgres://user@host:5432/db), not %q; leave it empty for SQLite under --data", displayEndpoint(u))
}

func (d *databaseFlags) open(ctx context.Context) (*sqlstore.Store, error) {
	url := d.DatabaseURL
	if url == "" {
		url = "sqlite:" + filepath.Join(d.Data, "registry.db")
		if err := os.MkdirAll(d.Data, 0o750); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	}
	store, err := sqlstore.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", displayEndpoint(url), err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return store, nil
}

func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("registry import", "lessee registry import [flags] DIR", `Loads enterprises.csv, terms.csv, vehicles.csv and delegations.csv from DIR
into the registry (PostgreSQL with --database-url, else SQLite under --data),
all or nothing.

Examples:
  lessee registry import examples/registry
  lessee registry import --database-url postgres://lessee@db/lessee /srv/registry`, stdout)
	var db databaseFlags
	db.register(cmd.fs)
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	pos, err := cmd.args("DIR")
	if err != nil {
		return err
	}
	if err := cmd.checkFlags(checkDatabaseURL(db.DatabaseURL)); err != nil {
		return err
	}
	dir := pos[0]
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("cannot read %s: %w", dir, unwrapPath(err))
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a directory; give the directory that holds enterprises.csv, terms.csv, vehicles.csv and delegations.csv", dir)
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	stats, err := store.Import(ctx, dir, sqlstore.ImportOptions{AllowSynthetic: db.TestRegistry})
	if err != nil {
		return fmt.Errorf("import %s: nothing was loaded: %w", dir, err)
	}
	fmt.Fprintf(stdout, "imported %s: %+v\n", dir, stats)
	return nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("migrate", "lessee migrate [flags]", `Applies the database schema (PostgreSQL with --database-url, else SQLite under
--data) and exits; run it before 'lessee serve --migrate=false' processes.

Examples:
  lessee migrate --database-url postgres://lessee@db/lessee`, stdout)
	var db databaseFlags
	db.register(cmd.fs)
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	if err := cmd.checkFlags(checkDatabaseURL(db.DatabaseURL)); err != nil {
		return err
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintln(stdout, "database schema is up to date")
	return nil
}
