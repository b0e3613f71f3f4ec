package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// This file is what every command shares: its flags (each with its
// environment variable), its help on -h (exit status 0), and its usage
// errors, which name the mistake in one line and then show the command's
// usage line (exit status 2). Commands report usage errors with
// command.usageErr and everything else as ordinary errors (exit status 1).

// command is one command's flags and help.
type command struct {
	name     string // as typed after "lessee": "submit", "registry import"
	synopsis string // the usage line, without "usage: "
	help     string // what it does, then "Examples:"
	fs       *flag.FlagSet
	stdout   io.Writer
}

// newCommand returns a command whose flags are defined on its fs. The flag
// package prints nothing itself: help goes to stdout on -h, and a bad flag
// becomes one usage error.
func newCommand(name, synopsis, help string, stdout io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, synopsis: synopsis, help: strings.TrimSpace(help), fs: fs, stdout: stdout}
}

// parse parses args (flags may come before, between or after the
// positional arguments) and fills the flags not given from their
// environment variables. On -h it prints the help and returns
// flag.ErrHelp; any mistake is a usage error.
func (c *command) parse(args []string, getenv func(string) string) error {
	err := parseFlags(c.fs, args, getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printHelp()
		return flag.ErrHelp
	case err != nil:
		return c.usageErr("%s", flagMessage(c.fs, err))
	}
	return nil
}

// printHelp writes the usage line, the help text and every flag to stdout.
func (c *command) printHelp() {
	fmt.Fprintf(c.stdout, "usage: %s\n\n%s\n", c.synopsis, c.help)
	n := 0
	c.fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(c.stdout, "\nFlags (each can also be set by its environment variable: --%s by %s):\n", firstFlag(c.fs), envName(firstFlag(c.fs)))
	c.fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(c.stdout, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(c.stdout, " %s", typ)
		}
		fmt.Fprintf(c.stdout, "\n        %s", usage)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if typ == "string" {
				fmt.Fprintf(c.stdout, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(c.stdout, " (default %s)", f.DefValue)
			}
		}
		fmt.Fprintln(c.stdout)
	})
}

func firstFlag(fs *flag.FlagSet) string {
	name := ""
	fs.VisitAll(func(f *flag.Flag) {
		if name == "" {
			name = f.Name
		}
	})
	return name
}

// usageErr is a usage error of this command.
func (c *command) usageErr(format string, args ...any) error {
	return &usageError{cmd: c.name, synopsis: c.synopsis, msg: fmt.Sprintf(format, args...)}
}

// args returns the positional arguments when there are as many as names
// (e.g. "FILE"), and otherwise a usage error saying what is missing or too
// much.
func (c *command) args(names ...string) ([]string, error) {
	got := c.fs.Args()
	switch {
	case len(got) < len(names):
		return nil, c.usageErr("missing %s", strings.Join(names[len(got):], " "))
	case len(got) > len(names):
		extra := got[len(names):]
		msg := fmt.Sprintf("unexpected argument %q", extra[0])
		if len(names) > 0 {
			msg = fmt.Sprintf("one %s at a time: got %d arguments (%s)", strings.Join(names, " "), len(got), strings.Join(got, " "))
		}
		if extra[0] == "true" || extra[0] == "false" {
			msg += fmt.Sprintf("; a switch takes its value after '=' (--wait=%s), or give the switch alone", extra[0])
		}
		return nil, c.usageErr("%s", msg)
	}
	return got, nil
}

// usageError is a mistake in how lessee was called: it is printed as one
// line naming the mistake, then the usage line, and exits with status 2.
type usageError struct {
	cmd      string // "" for the top level
	synopsis string // "" to print none
	msg      string
}

func (e *usageError) Error() string { return e.msg }

// print writes the error as the user sees it.
func (e *usageError) print(w io.Writer) {
	prefix := "lessee"
	if e.cmd != "" {
		prefix += " " + e.cmd
	}
	fmt.Fprintf(w, "%s: %s\n", prefix, e.msg)
	if e.synopsis != "" {
		fmt.Fprintf(w, "usage: %s   ('%s -h' for help)\n", e.synopsis, prefix)
	} else {
		fmt.Fprintf(w, "Run '%s -h' for help.\n", prefix)
	}
}

// flagMessage rewrites the flag package's errors as sentences in this
// command's terms: --name, a suggestion for a mistyped flag, and what a
// value should look like.
func flagMessage(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := nearest(name, names); s != "" {
			return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, s)
		}
		return fmt.Sprintf("unknown flag --%s", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Sprintf("%s needs a value", "--"+strings.TrimLeft(name, "-"))
	}
	// invalid value "x" for flag -name: reason
	// invalid boolean value "x" for -name: reason
	rest, ok := strings.CutPrefix(msg, "invalid value ")
	sep := " for flag -"
	if !ok {
		rest, ok = strings.CutPrefix(msg, "invalid boolean value ")
		sep = " for -"
	}
	if ok {
		value, rest, _ := strings.Cut(rest, sep)
		name, reason, _ := strings.Cut(rest, ": ")
		if f := fs.Lookup(name); f != nil {
			if want := valueKind(f); want != "" {
				reason = want
			}
		}
		return fmt.Sprintf("--%s %s: %s", name, value, reason)
	}
	return msg
}

// valueKind says what a flag's value must look like, for the flag types
// the standard parsers reject with a bare "parse error".
func valueKind(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case int, int64:
		return "want a whole number"
	case float64:
		return "want a number"
	case bool:
		return "want true or false"
	case time.Duration:
		return "want a duration such as 500ms, 30s, 5m or 2h"
	}
	return ""
}

// nearest returns the candidate closest to s within two edits (one for a
// word under five letters), or of which s is a prefix; "" when none is.
func nearest(s string, candidates []string) string {
	best, bestDist := "", 3
	if len(s) < 5 {
		bestDist = 2
	}
	for _, c := range candidates {
		d := editDistance(s, c)
		if len(s) >= 3 && strings.HasPrefix(c, s) {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): a swap of two neighbours ("sumbit") counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// positive, atLeast and the like check a flag's value after parsing;
// their errors name the flag and say what it must be.
func positive[T int | int64 | float64 | time.Duration](name string, v T) error {
	if v <= 0 {
		return fmt.Errorf("--%s must be positive, not %v", name, v)
	}
	return nil
}

func atLeast[T int | int64 | float64 | time.Duration](name string, v, least T) error {
	if v < least {
		return fmt.Errorf("--%s must be at least %v, not %v", name, least, v)
	}
	return nil
}

// oneOf checks an enumerated flag.
func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("--%s must be %s, not %q", name, orList(allowed), v)
}

// orList is "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkFlags returns the first failed check as a usage error of c.
func (c *command) checkFlags(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return c.usageErr("%s", err.Error())
		}
	}
	return nil
}
