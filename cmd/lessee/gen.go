package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/ident"
)

func genGroup() group {
	return group{name: "gen",
		intro: `Generates deterministic synthetic data: the same seed gives the same files.`,
		subs: []subcommand{
			{"registry", "DIR", "write enterprises.csv, terms.csv, vehicles.csv and delegations.csv for 'lessee registry import'", runGenRegistry},
			{"changes", "FILE --registry DIR", "write a change file (CSV; FILE - is standard output) for the registry in DIR", runGenChanges},
		}}
}

func runGenRegistry(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("gen registry", "lessee gen registry [flags] DIR", `Writes a seeded synthetic registry into DIR: enterprises.csv, terms.csv,
vehicles.csv and delegations.csv, for 'lessee registry import'.

Examples:
  lessee gen registry --vehicles 100000 /tmp/reg
  lessee gen registry --synthetic --seed 7 /tmp/reg`, stdout)
	fs := cmd.fs
	var cfg gen.RegistryConfig
	fs.IntVar(&cfg.Enterprises, "enterprises", 20, "enterprises to generate")
	fs.IntVar(&cfg.Vehicles, "vehicles", 1000, "vehicles to generate")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.BoolVar(&cfg.Synthetic, "synthetic", false, "person lessees are synthetic test numbers (needs --test-registry to import)")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	pos, err := cmd.args("DIR")
	if err != nil {
		return err
	}
	if err := cmd.checkFlags(positive("enterprises", cfg.Enterprises), positive("vehicles", cfg.Vehicles)); err != nil {
		return err
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
	cmd := newCommand("gen changes", "lessee gen changes --registry DIR [flags] FILE", `Writes a seeded synthetic change file (CSV; FILE - is standard output) for the
registry in DIR; each row's reference names the outcome it is meant to get
("R0000001-applied").

Examples:
  lessee gen changes --registry /tmp/reg --rows 100000 /tmp/changes.csv
  lessee gen changes --registry /tmp/reg --rows 10 -`, stdout)
	fs := cmd.fs
	var cfg gen.ChangesConfig
	var registryDir string
	fs.IntVar(&cfg.Rows, "rows", 1000, "data rows to generate")
	fs.StringVar(&cfg.Submitter, "submitter", "", "orgnr the file is uploaded as (default: the largest fleet owner with terms)")
	fs.StringVar(&registryDir, "registry", "", "directory of the registry files the changes refer to (required)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.BoolVar(&cfg.Synthetic, "synthetic", false, "new person lessees are synthetic test numbers")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if registryDir == "" {
		return cmd.usageErr("missing --registry DIR: the registry the changes refer to (see 'lessee gen registry')")
	}
	pos, err := cmd.args("FILE")
	if err != nil {
		return err
	}
	if err := cmd.checkFlags(positive("rows", cfg.Rows)); err != nil {
		return err
	}
	if cfg.Submitter != "" {
		if err := ident.OrgNr(cfg.Submitter); err != nil {
			return cmd.usageErr("--submitter %q: %v", cfg.Submitter, err)
		}
	}
	reg, err := gen.ReadRegistry(registryDir)
	if err != nil {
		return fmt.Errorf("--registry %s: %w", registryDir, unwrapPath(err))
	}
	if len(reg.Enterprises) == 0 {
		return fmt.Errorf("--registry %s holds no registry: write one with 'lessee gen registry %s'", registryDir, registryDir)
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
