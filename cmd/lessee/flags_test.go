package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// TestParseFlagsAnyOrder: flags may follow positional arguments
// (`lessee registry import DIR --database-url URL`), "--" ends the flags,
// and environment variables fill only flags not given.
func TestParseFlagsAnyOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		db   string
		wait bool
		pos  []string
	}{
		{"OKFlagsFirst", []string{"--database-url", "pg://a", "dir"}, "pg://a", false, []string{"dir"}},
		{"OKFlagsAfter", []string{"dir", "--database-url", "pg://a", "--wait"}, "pg://a", true, []string{"dir"}},
		{"OKInterleaved", []string{"a", "--wait", "b", "--database-url=pg://b", "c"}, "pg://b", true, []string{"a", "b", "c"}},
		{"OKDoubleDash", []string{"--wait", "--", "-not-a-flag", "--database-url"}, "from-env", true, []string{"-not-a-flag", "--database-url"}},
		{"OKEnvFillsTheRest", []string{"dir"}, "from-env", false, []string{"dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			db := fs.String("database-url", "", "")
			wait := fs.Bool("wait", false, "")
			getenv := func(k string) string {
				if k == "LESSEE_DATABASE_URL" {
					return "from-env"
				}
				return ""
			}
			if err := parseFlags(fs, tc.args, getenv); err != nil {
				t.Fatal(err)
			}
			if *db != tc.db || *wait != tc.wait || !slices.Equal(fs.Args(), tc.pos) {
				t.Errorf("database-url %q, wait %v, args %q; want %q, %v, %q", *db, *wait, fs.Args(), tc.db, tc.wait, tc.pos)
			}
		})
	}
	t.Run("ErrUnknownFlagAfterArgument", func(t *testing.T) {
		t.Parallel()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if err := parseFlags(fs, []string{"dir", "--nope"}, func(string) string { return "" }); err == nil {
			t.Fatal("an unknown flag after an argument was taken as an argument")
		}
	})
}
