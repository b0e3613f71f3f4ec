package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCLIAnswers runs every command, and the subcommands of registry and
// gen, with -h, a missing (or unexpected) argument, a bad flag value and a
// typo, and checks the exit status and the first line a person reads:
// help on stdout for -h, and for a mistake one line on stderr that names
// it, followed by at most the usage line.
func TestCLIAnswers(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	type tc struct {
		args  []string
		code  int
		first string // prefix of the first line (stdout for 0, stderr else)
	}
	var cases []tc
	help := func(cmd string) tc {
		return tc{append(strings.Fields(cmd), "-h"), 0, "usage: lessee " + cmd}
	}
	for _, c := range []struct {
		cmd      string
		missing  []string // args with one missing (or one too many)
		missMsg  string
		badValue []string
		badMsg   string
		typo     []string
		typoMsg  string
	}{
		{"serve", []string{"extra"}, `unexpected argument "extra"`,
			[]string{"--max-rows", "-5"}, "--max-rows must be positive, not -5",
			[]string{"--chunk-sise", "10"}, "unknown flag --chunk-sise; did you mean --chunk-size?"},
		{"submit", []string{"--as", "912345602"}, "missing FILE",
			[]string{"--as", "912345602", "--timeout", "soon", "f.csv"}, `--timeout "soon": want a duration such as 500ms, 30s, 5m or 2h`,
			[]string{"--as", "912345602", "--wiat", "f.csv"}, "unknown flag --wiat; did you mean --wait?"},
		{"receipt", nil, "missing KEY",
			[]string{"--summary=yes", "k"}, `--summary "yes": want true or false`,
			[]string{"--sumary", "k"}, "unknown flag --sumary; did you mean --summary?"},
		{"status", []string{"extra"}, `unexpected argument "extra"`,
			[]string{"--limit", "0"}, "--limit must be between 1 and 1000, not 0",
			[]string{"--limt", "5"}, "unknown flag --limt; did you mean --limit?"},
		{"token", []string{"--data", data}, "missing --as ORGNR",
			[]string{"--data", data, "--as", "912345602", "--ttl", "-1h"}, "--ttl must be positive, not -1h0m0s",
			[]string{"--data", data, "--ass", "912345602"}, "unknown flag --ass; did you mean --as?"},
		{"export", []string{"--data", data}, "missing --as ORGNR or --all",
			[]string{"--data", data, "--all=maybe"}, `--all "maybe": want true or false`,
			[]string{"--data", data, "--al"}, "unknown flag --al; did you mean --all?"},
		{"registry import", []string{"--data", data}, "missing DIR",
			[]string{"--data", data, "--test-registry=2", "dir"}, `--test-registry "2": want true or false`,
			[]string{"--data", data, "--databse-url", "x", "dir"}, "unknown flag --databse-url; did you mean --database-url?"},
		{"migrate", []string{"--data", data, "extra"}, `unexpected argument "extra"`,
			[]string{"--data", data, "--test-registry=no"}, `--test-registry "no": want true or false`,
			[]string{"--dat", data}, "unknown flag --dat; did you mean --data?"},
		{"gen registry", nil, "missing DIR",
			[]string{"--vehicles", "-3", "dir"}, "--vehicles must be positive, not -3",
			[]string{"--vehicle", "3", "dir"}, "unknown flag --vehicle; did you mean --vehicles?"},
		{"gen changes", []string{"--registry", "dir"}, "missing FILE",
			[]string{"--registry", "dir", "--rows", "many", "f.csv"}, `--rows "many": want a whole number`,
			[]string{"--registy", "dir", "f.csv"}, "unknown flag --registy; did you mean --registry?"},
		{"bench", []string{"extra"}, `unexpected argument "extra"`,
			[]string{"--rows", "0"}, "--rows must be positive, not 0",
			[]string{"--snapsot"}, "unknown flag --snapsot; did you mean --snapshot?"},
		{"healthcheck", []string{"extra"}, `unexpected argument "extra"`,
			[]string{"--listen"}, "--listen needs a value",
			[]string{"--lisen", "x"}, "unknown flag --lisen; did you mean --listen?"},
	} {
		name := strings.Fields(c.cmd)
		prefix := "lessee " + c.cmd + ": "
		cases = append(cases, help(c.cmd),
			tc{append(name, c.missing...), 2, prefix + c.missMsg},
			tc{append(name, c.typo...), 2, prefix + c.typoMsg})
		cases = append(cases, tc{append(name, c.badValue...), 2, prefix + c.badMsg})
	}
	cases = append(cases,
		tc{[]string{"-h"}, 0, "usage: lessee <command>"},
		tc{[]string{"--help"}, 0, "usage: lessee <command>"},
		tc{[]string{"help", "submit"}, 0, "usage: lessee submit"},
		tc{nil, 2, "lessee: missing command: serve, submit"},
		tc{[]string{"sumbit"}, 2, `lessee: unknown command "sumbit"; did you mean "submit"?`},
		tc{[]string{"recipt"}, 2, `lessee: unknown command "recipt"; did you mean "receipt"?`},
		tc{[]string{"frobnicate"}, 2, `lessee: unknown command "frobnicate"; the commands are serve, submit`},
		tc{[]string{"--data", "x", "serve"}, 2, "lessee: --data goes after the command"},
		tc{[]string{"registry", "--help"}, 0, "usage: lessee registry <command>"},
		tc{[]string{"registry"}, 2, "lessee registry: missing command: import"},
		tc{[]string{"registry", "imprt"}, 2, `lessee registry: unknown command "imprt"; did you mean "import"?`},
		tc{[]string{"gen", "-h"}, 0, "usage: lessee gen <command>"},
		tc{[]string{"gen"}, 2, "lessee gen: missing command: registry or changes"},
		tc{[]string{"gen", "chnages"}, 2, `lessee gen: unknown command "chnages"; did you mean "changes"?`},
		// Two files, a switch given a separate value, no --as.
		tc{[]string{"submit", "--as", "912345602", "a.csv", "b.csv"}, 2, "lessee submit: one FILE at a time: got 2 arguments (a.csv b.csv)"},
		tc{[]string{"submit", "--as", "912345602", "a.csv", "--wait", "true"}, 2, "lessee submit: one FILE at a time"},
		tc{[]string{"submit", "a.csv"}, 2, "lessee submit: missing --as ORGNR"},
		tc{[]string{"submit", "--as", "912345603", "a.csv"}, 2, `lessee submit: --as "912345603": `},
		tc{[]string{"serve", "--log-format", "yaml"}, 2, `lessee serve: --log-format must be text or json, not "yaml"`},
		tc{[]string{"serve", "--small-file-bytes", "-1"}, 2, "lessee serve: --small-file-bytes must be at least 0, not -1"},
		tc{[]string{"serve", "--max-file-bytes", "0"}, 2, "lessee serve: --max-file-bytes must be positive, not 0"},
		tc{[]string{"migrate", "--database-url", "mysql://u:pw@db/x"}, 2, `lessee migrate: --database-url must be a PostgreSQL URL (postgres://user@host:5432/db), not "mysql://u:xxxxx@db/x"`},
	)
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := runMain(context.Background(), c.args, func(string) string { return "" }, &stdout, &stderr)
			out := stderr.String()
			if c.code == 0 {
				out = stdout.String()
			}
			first, rest, _ := strings.Cut(out, "\n")
			if code != c.code || !strings.HasPrefix(first, c.first) {
				t.Fatalf("lessee %s: exit %d, first line %q; want exit %d, first line starting %q\nstdout:\n%s\nstderr:\n%s",
					strings.Join(c.args, " "), code, first, c.code, c.first, stdout.String(), stderr.String())
			}
			switch {
			case c.code == 0:
				// Written help with examples, and nothing on stderr.
				if stderr.Len() > 0 {
					t.Errorf("help wrote to stderr: %s", stderr.String())
				}
				if len(c.args) > 1 && c.args[len(c.args)-1] == "-h" && !strings.Contains(out, "Examples:") && !strings.Contains(out, "Commands:") {
					t.Errorf("help without examples:\n%s", out)
				}
				if strings.Contains(out, "Usage of") {
					t.Errorf("Go's bare usage:\n%s", out)
				}
			default:
				// The mistake once, then at most the usage line.
				if n := strings.Count(rest, "\n"); n > 1 {
					t.Errorf("%d more lines after the error, want at most the usage line:\n%s", n, out)
				}
				if stdout.Len() > 0 {
					t.Errorf("a usage error wrote to stdout: %s", stdout.String())
				}
			}
		})
	}
}

// TestReceiptHelpListsItsFlags: receipt uses the S3 endpoint only, so its
// help names no HTTP flag; submit and status find the HTTP side by
// serve's --listen.
func TestReceiptHelpListsItsFlags(t *testing.T) {
	t.Parallel()
	helpOf := func(cmd string) string {
		var out bytes.Buffer
		if code := runMain(context.Background(), []string{cmd, "-h"}, func(string) string { return "" }, &out, &out); code != 0 {
			t.Fatalf("%s -h: exit %d", cmd, code)
		}
		return out.String()
	}
	for _, f := range []string{"--server", "--listen", "--operator-user"} {
		if strings.Contains(helpOf("receipt"), "\n  "+f+" ") {
			t.Errorf("receipt -h lists %s, which it does not use", f)
		}
	}
	for _, cmd := range []string{"submit", "status"} {
		if !strings.Contains(helpOf(cmd), "\n  --listen ") {
			t.Errorf("%s -h does not list --listen", cmd)
		}
	}
	for _, cmd := range []string{"submit", "receipt", "export"} {
		if !strings.Contains(helpOf(cmd), "\n  --s3-listen ") {
			t.Errorf("%s -h does not list --s3-listen", cmd)
		}
	}
}

// TestClientFindsServeEndpoints: the clients read serve's own flags and
// variables, so LESSEE_S3_LISTEN and LESSEE_LISTEN point them at the
// service, --s3-endpoint and --server override them.
func TestClientFindsServeEndpoints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env        map[string]string
		args       []string
		s3, server string
	}{
		{nil, nil, "http://127.0.0.1:9000", "http://127.0.0.1:8080"},
		{map[string]string{"LESSEE_S3_LISTEN": "127.0.0.1:9100", "LESSEE_LISTEN": "127.0.0.1:8090"}, nil, "http://127.0.0.1:9100", "http://127.0.0.1:8090"},
		{nil, []string{"--s3-listen", "127.0.0.1:9200", "--listen", "localhost:1"}, "http://127.0.0.1:9200", "http://localhost:1"},
		{map[string]string{"LESSEE_S3_ENDPOINT": "https://s3.example.com", "LESSEE_S3_LISTEN": "127.0.0.1:9100"}, []string{"--server", "https://lessee.example.com/"},
			"https://s3.example.com", "https://lessee.example.com"},
	} {
		cmd := newCommand("submit", "", "", &bytes.Buffer{})
		var o submitOptions
		o.register(cmd.fs)
		if err := cmd.parse(append(tc.args, "--as", "912345602", "f.csv"), func(k string) string { return tc.env[k] }); err != nil {
			t.Fatal(err)
		}
		if o.s3URL() != tc.s3 || o.serverURL() != tc.server {
			t.Errorf("env %v args %q: S3 %s, server %s; want %s, %s", tc.env, tc.args, o.s3URL(), o.serverURL(), tc.s3, tc.server)
		}
	}
}

func TestNearest(t *testing.T) {
	t.Parallel()
	cmds := []string{"serve", "submit", "receipt", "status", "token", "export", "registry", "migrate", "gen", "bench", "healthcheck"}
	for in, want := range map[string]string{
		"sumbit": "submit", "serv": "serve", "recipt": "receipt", "stauts": "status", "healtcheck": "healthcheck",
		"regisrty": "registry", "health": "healthcheck", "xyzzy": "", "g": "",
	} {
		if got := nearest(in, cmds); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}
