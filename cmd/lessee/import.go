package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetreg/lessee/storage/sqlstore"
)

// databaseFlags are the flags of commands that only need the database.
type databaseFlags struct {
	Data         string
	DatabaseURL  string
	TestRegistry bool
}

func (d *databaseFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.Data, "data", "./lessee-data", "directory of the embedded SQLite registry")
	fs.StringVar(&d.DatabaseURL, "database-url", "", "PostgreSQL URL; empty uses SQLite under --data")
	fs.BoolVar(&d.TestRegistry, "test-registry", false, "accept synthetic test identity numbers")
}

func (d *databaseFlags) open(ctx context.Context) (*sqlstore.Store, error) {
	url := d.DatabaseURL
	if url == "" {
		url = "sqlite:" + filepath.Join(d.Data, "registry.db")
		if err := os.MkdirAll(d.Data, 0o750); err != nil {
			return nil, err
		}
	}
	store, err := sqlstore.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return store, nil
}

func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lessee registry import [flags] DIR\n\nLoads enterprises.csv, terms.csv, vehicles.csv and delegations.csv from DIR, all or nothing.")
		fs.PrintDefaults()
	}
	var db databaseFlags
	db.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	stats, err := store.Import(ctx, fs.Arg(0), sqlstore.ImportOptions{AllowSynthetic: db.TestRegistry})
	if err != nil {
		return fmt.Errorf("import %s: nothing was loaded: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "imported %s: %+v\n", fs.Arg(0), stats)
	return nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var db databaseFlags
	db.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
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
