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
	"time"
)

func main() {
	ctx, intr, done := interrupts(os.Stderr)
	code := runMain(withInterrupt(ctx, intr), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	done()
	os.Exit(code)
}

// runMain runs a command and reports its error as the user sees it: the
// exit status is 0 on success and after -h, 2 for a usage error (printed
// as one line naming the mistake, then the usage line), 1 for any other
// error (printed as one line), and 128 + the signal's number when a
// second interrupt stopped the command at once.
func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := run(ctx, args, getenv, stdout, stderr)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		ue.print(stderr)
		return 2
	case errors.Is(err, errStoppedNow):
		return interruptOf(ctx).code()
	}
	fmt.Fprintln(stderr, "lessee:", err)
	return 1
}

// errStoppedNow is returned by a command a second interrupt stopped at
// once, after it printed what it left.
var errStoppedNow = errors.New("stopped at once")

// interrupt is the second SIGINT or SIGTERM: commands stop gracefully at
// the first (the context is cancelled; serve waits for running files) and
// at once at the second.
type interrupt struct {
	now chan struct{} // closed at the second signal
	sig os.Signal     // that signal, set before now is closed
}

// stopNow is closed at the second interrupt; nil (never ready) for no
// interrupt at all.
func (i *interrupt) stopNow() <-chan struct{} {
	if i == nil {
		return nil
	}
	return i.now
}

// code is the conventional exit status of a process ended by the signal.
func (i *interrupt) code() int {
	if i != nil {
		if n, ok := i.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 1
}

// interrupts returns a context cancelled at the first SIGINT or SIGTERM
// and the interrupt a second one raises. Should a command not have
// returned stopNowGrace after the second, the process exits anyway:
// everything it does is safe to cut off (files resume from their last
// committed chunk). done stops listening.
func interrupts(stderr io.Writer) (ctx context.Context, intr *interrupt, done func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	intr = &interrupt{now: make(chan struct{})}
	quit := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-quit:
			return
		}
		select {
		case intr.sig = <-sigs:
			close(intr.now)
		case <-quit:
			return
		}
		select {
		case <-time.After(stopNowGrace):
			fmt.Fprintf(stderr, "lessee: still running %s after the second interrupt; exiting\n", stopNowGrace)
			os.Exit(intr.code())
		case <-quit:
		}
	}()
	return ctx, intr, func() { signal.Stop(sigs); cancel(); close(quit) }
}

// stopNowGrace is how long a command has to return after the second
// interrupt before the process exits regardless.
const stopNowGrace = 5 * time.Second

// interruptKey is the context key of the interrupt.
type interruptKey struct{}

// withInterrupt gives ctx the second interrupt. It travels in the context
// because only serve acts on it, and every command has run's signature.
func withInterrupt(ctx context.Context, i *interrupt) context.Context {
	return context.WithValue(ctx, interruptKey{}, i)
}

// interruptOf returns ctx's interrupt, or nil.
func interruptOf(ctx context.Context) *interrupt {
	i, _ := ctx.Value(interruptKey{}).(*interrupt)
	return i
}

// runFunc is a command's entry point.
type runFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// subcommand is one entry of a command group.
type subcommand struct {
	name    string
	args    string // its arguments, for the list: "--as ORGNR FILE"
	summary string
	run     runFunc
}

// group is a command made of subcommands: lessee itself, `registry`, `gen`.
type group struct {
	name  string // "" for lessee itself
	intro string // after the usage line
	subs  []subcommand
	outro string
}

func (g group) prefix() string { return strings.TrimSpace("lessee " + g.name) }

// run dispatches to the subcommand args[0] names; -h, --help and help
// print the group's help, and `help NAME` the subcommand's.
func (g group) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{cmd: g.name, msg: "missing command: " + g.names()}
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			return g.run(ctx, append(args[1:], "-h"), getenv, stdout, stderr)
		}
		g.printHelp(stdout)
		return nil
	}
	for _, s := range g.subs {
		if s.name == name {
			return s.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	if strings.HasPrefix(name, "-") {
		return &usageError{cmd: g.name, msg: fmt.Sprintf("%s goes after the command: %s <command> [flags]", name, g.prefix())}
	}
	var names []string
	for _, s := range g.subs {
		names = append(names, s.name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := nearest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += "; the commands are " + g.names()
	}
	return &usageError{cmd: g.name, msg: msg}
}

// names lists the subcommands: "import" or "serve, registry, ...".
func (g group) names() string {
	var names []string
	for _, s := range g.subs {
		names = append(names, s.name)
	}
	return orList(names)
}

func (g group) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\n", g.prefix())
	if g.intro != "" {
		fmt.Fprintf(w, "%s\n\n", g.intro)
	}
	fmt.Fprintln(w, "Commands:")
	width := 0
	for _, s := range g.subs {
		width = max(width, len(s.name)+1+len(s.args))
	}
	for _, s := range g.subs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(s.name+" "+s.args), s.summary)
	}
	if g.outro != "" {
		fmt.Fprintf(w, "\n%s\n", g.outro)
	}
}

// topLevel is the lessee command itself.
func topLevel() group {
	return group{
		subs: []subcommand{
			{"serve", "", "run the worker, inbox scan, S3 endpoint (embedded) and HTTP", runServe},
			{"submit", "--as ORGNR FILE", "upload a change file; --wait shows progress and the summary", runSubmit},
			{"receipt", "KEY", "print the receipt of an upload", runReceipt},
			{"status", "", "list recent jobs of a running service", runStatus},
			{"token", "--as ORGNR", "print an API token of the development issuer (key under --data)", runToken},
			{"export", "--as ORGNR|--all", "write exports/<orgnr>/fleet.csv now for a fleet owner, or all of them", runExport},
			{"registry", "import DIR", "load enterprises.csv, terms.csv, vehicles.csv, delegations.csv", registryGroup().run},
			{"migrate", "", "apply the database schema", runMigrate},
			{"gen", "registry DIR | changes FILE", "write a seeded synthetic registry or change file", genGroup().run},
			{"bench", "", "measure the real path end to end against PostgreSQL and Redis, with baselines", runBench},
			{"healthcheck", "", "exit 0 when the service on --listen reports healthy", runHealthcheck},
		},
		outro: `Every flag also reads an environment variable: --data is LESSEE_DATA,
--s3-listen is LESSEE_S3_LISTEN, and so on; submit, receipt, status and
export find the service by the same flags and variables as serve.
Run 'lessee <command> -h' for a command's flags and examples.`,
	}
}

func registryGroup() group {
	return group{name: "registry", intro: "Manages the registry data the service validates against.",
		subs: []subcommand{{"import", "DIR", "load enterprises.csv, terms.csv, vehicles.csv and delegations.csv from DIR, all or nothing", runImport}}}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return topLevel().run(ctx, args, getenv, stdout, stderr)
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
			// fs.Set, not f.Value.Set: Visit then counts it as given
			// (bench checks which flags were given).
			if serr := fs.Set(f.Name, v); serr != nil {
				if want := valueKind(f); want != "" {
					serr = errors.New(want)
				}
				err = fmt.Errorf("%s=%q (for --%s): %w", name, v, f.Name, serr)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "LESSEE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
