package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetreg/lessee/gen"
)

const genUsage = `usage:
  lessee gen registry DIR [--enterprises M] [--vehicles N] [--seed S]
  lessee gen changes FILE --registry DIR [--rows R] [--submitter ORGNR] [--seed S]

Generates deterministic synthetic data: the same seed gives the same files.
'registry' writes enterprises.csv, terms.csv, vehicles.csv and delegations.csv
for 'lessee registry import'. 'changes' writes a change file (CSV; FILE - is
standard output) for the registry in DIR; each row's reference names the
outcome it is meant to get ("R0000001-applied").
`

// runGen implements `lessee gen registry` and `lessee gen changes`.
func runGen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, genUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "registry":
		return runGenRegistry(ctx, args[1:], getenv, stdout, stderr)
	case "changes":
		return runGenChanges(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, genUsage)
		return nil
	}
	fmt.Fprint(stderr, genUsage)
	return fmt.Errorf("unknown gen command %q", args[0])
}

func runGenRegistry(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, genUsage); fs.PrintDefaults() }
	var cfg gen.RegistryConfig
	fs.IntVar(&cfg.Enterprises, "enterprises", 20, "enterprises to generate")
	fs.IntVar(&cfg.Vehicles, "vehicles", 1000, "vehicles to generate")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.BoolVar(&cfg.Synthetic, "synthetic", false, "person lessees are synthetic test numbers (needs --test-registry to import)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	reg, err := gen.WriteRegistry(pos[0], cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote registry to %s: %d enterprises, %d vehicles, %d delegations; largest fleet %s\n",
		pos[0], len(reg.Enterprises), len(reg.Vehicles), len(reg.Delegations), reg.LargestFleet())
	return nil
}

func runGenChanges(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("gen changes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, genUsage); fs.PrintDefaults() }
	var cfg gen.ChangesConfig
	var registryDir string
	fs.IntVar(&cfg.Rows, "rows", 1000, "data rows to generate")
	fs.StringVar(&cfg.Submitter, "submitter", "", "orgnr the file is uploaded as (default: the largest fleet owner with terms)")
	fs.StringVar(&registryDir, "registry", "", "directory of the registry files the changes refer to (required)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.BoolVar(&cfg.Synthetic, "synthetic", false, "new person lessees are synthetic test numbers")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != 1 || registryDir == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	reg, err := gen.ReadRegistry(registryDir)
	if err != nil {
		return err
	}
	if cfg.Submitter == "" {
		cfg.Submitter = reg.LargestFleet()
	}

	out, name := stdout, pos[0]
	if name != "-" {
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("close %s: %w", name, cerr)
			}
			if err != nil {
				os.Remove(name)
			}
		}()
		bw := bufio.NewWriterSize(f, 64<<10)
		defer func() {
			if ferr := bw.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("write %s: %w", name, ferr)
			}
		}()
		out = bw
	}
	if err := gen.WriteChanges(out, reg, cfg); err != nil {
		return err
	}
	if name != "-" {
		fmt.Fprintf(stdout, "wrote %d rows to %s; upload it as inbox/%s/%s\n", cfg.Rows, name, cfg.Submitter, filepath.Base(name))
	}
	return nil
}
