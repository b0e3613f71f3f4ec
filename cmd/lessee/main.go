// Command lessee ingests lessee change files for the national vehicle
// registry: `lessee serve` runs the worker, inbox scan and HTTP side;
// `lessee registry import DIR` loads registry data; `lessee migrate` applies
// the database schema.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lessee:", err)
		os.Exit(1)
	}
}

const usage = `usage: lessee <command> [flags]

commands:
  serve                   run the worker, inbox scan, S3 endpoint (embedded) and HTTP
  registry import DIR     load enterprises.csv, terms.csv, vehicles.csv, delegations.csv
  migrate                 apply the database schema
  submit --as ORGNR FILE  upload a change file; --wait shows progress and the summary
  receipt KEY             print the receipt of an upload
  export --as ORGNR|--all write exports/<orgnr>/fleet.csv now for a fleet owner, or all of them
  status                  list recent jobs of a running service
  gen registry DIR        write a seeded synthetic registry (import files)
  gen changes FILE        write a seeded synthetic change file for a registry
  bench                   measure the real path end to end against PostgreSQL and Redis, with baselines
  healthcheck             exit 0 when the service on --listen reports healthy
  token --as ORGNR        print an API token of the development issuer (key under --data)

Every flag also reads an environment variable: --data is LESSEE_DATA,
--s3-access-key is LESSEE_S3_ACCESS_KEY, and so on. Run 'lessee <command> -h'
for the flags of a command.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "registry":
		if len(args) < 2 || args[1] != "import" {
			fmt.Fprint(stderr, usage)
			return flag.ErrHelp
		}
		return runImport(ctx, args[2:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "submit":
		return runSubmit(ctx, args[1:], getenv, stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], getenv, stdout, stderr)
	case "receipt":
		return runReceipt(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], getenv, stdout, stderr)
	case "gen":
		return runGen(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return runToken(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// parseFlags parses args and then fills every flag not given on the command
// line from its environment variable: LESSEE_ and the flag name in upper
// case with dashes as underscores.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	// Flags may come after positional arguments too (`registry import DIR
	// --database-url URL`); the flag package stops at the first of them.
	// Everything after "--" is positional.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "LESSEE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
