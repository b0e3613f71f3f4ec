package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/storage/s3store"
)

func TestSubmitWait(t *testing.T) {
	e := startService(t, serveConfig{})
	env := map[string]string{
		"LESSEE_S3_ENDPOINT": e.svc.s3Endpoint,
		"LESSEE_SERVER":      "http://" + e.svc.httpAddr,
	}
	getenv := func(k string) string { return env[k] }
	dir := t.TempDir()
	write := func(example string) string {
		b, err := fs.ReadFile(examples.FS(), example)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(example))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"submit", "--as", "912345602", "--wait", write("changes/all-outcomes.csv")}, getenv, &out, &errOut)
		if err != nil {
			t.Fatalf("submit: %v\n%s%s", err, out.String(), errOut.String())
		}
		for _, want := range []string{"uploaded ", "status:    completed", "rows:      22 (applied 6, unchanged 2, rejected 14)", "LESSEE_CONFLICT", "receipt:   receipts/912345602/all-outcomes.csv.receipt.csv"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		// The receipt command prints the same upload's receipt.
		out.Reset()
		if err := run(ctx, []string{"receipt", "inbox/912345602/all-outcomes.csv"}, getenv, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), "\ufeffrow,reference,operation") || strings.Count(out.String(), "\n") != 23 {
			t.Errorf("receipt output:\n%s", out.String())
		}
	})

	t.Run("Status", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"status"}, getenv, &out, &errOut); err != nil {
			t.Fatalf("status: %v\n%s", err, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "STARTED") || !strings.Contains(out.String(), "completed") ||
			!strings.Contains(out.String(), "all-outcomes.csv") || !strings.Contains(out.String(), "22/22") {
			t.Errorf("status output:\n%s", out.String())
		}
	})

	t.Run("ErrRefused", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"submit", "--as", "912345602", "--wait", write("changes/missing-column.csv")}, getenv, &out, &errOut)
		if !errors.Is(err, errRefused) {
			t.Fatalf("submit of a refused file: err = %v, want errRefused\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "code:      MISSING_COLUMN\nreason:    ") {
			t.Errorf("output lacks the refusal code and reason:\n%s", out.String())
		}
		if strings.Contains(out.String(), "rows:") {
			t.Errorf("a refused file's output shows row counts:\n%s", out.String())
		}
	})

	t.Run("ErrBadOrgnr", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"submit", "--as", "912345603", write("changes/all-outcomes.csv")}, getenv, &out, &errOut); err == nil {
			t.Fatal("submit with an invalid orgnr succeeded")
		}
	})
}

// TestSubmitSnapshot is the README's worked example through the CLI and a
// running service: the demo snapshot as a dry run, then for real; the dry
// run applies nothing, and both name the same derived operations.
func TestSubmitSnapshot(t *testing.T) {
	e := startService(t, serveConfig{})
	env := map[string]string{
		"LESSEE_S3_ENDPOINT": e.svc.s3Endpoint,
		"LESSEE_SERVER":      "http://" + e.svc.httpAddr,
	}
	getenv := func(k string) string { return env[k] }
	b, err := fs.ReadFile(examples.FS(), "snapshot/fleet.csv")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.csv")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	submit := func(flags ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append(append([]string{"submit", "--as", "912345602", "--wait"}, flags...), path)
		if err := run(ctx, args, getenv, &out, &errOut); err != nil {
			t.Fatalf("submit %v: %v\n%s%s", flags, err, out.String(), errOut.String())
		}
		return out.String()
	}
	dry := submit("--snapshot", "--dry-run")
	real := submit("--snapshot")
	for _, tc := range []struct{ out, mode, applied string }{
		{dry, "mode:      snapshot (dry run: nothing applied)", "rows:      11 (applied 3, unchanged 8, rejected 0)"},
		{real, "mode:      snapshot\n", "rows:      11 (applied 3, unchanged 8, rejected 0)"},
	} {
		for _, want := range []string{tc.mode, tc.applied, "operations: keep 8, add 1, replace 1, remove 1", "status:    completed"} {
			if !strings.Contains(tc.out, want) {
				t.Errorf("output lacks %q:\n%s", want, tc.out)
			}
		}
	}
	if !strings.Contains(dry, "receipts/912345602/fleet.csv.dryrun.receipt.csv") {
		t.Errorf("the dry run does not name its receipt:\n%s", dry)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"status"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("status: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "snapshot (dry run)") || strings.Count(out.String(), "snapshot") != 2 {
		t.Errorf("status does not show the two snapshots' modes:\n%s", out.String())
	}
	// The fleet's export follows the snapshot within a minute: EL10003's
	// new lessee, EL10004 without one.
	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: e.svc.s3Endpoint,
		AccessKey: defaultAccessKey, SecretKey: defaultSecretKey, Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		var buf bytes.Buffer
		_, err := objects.Download(ctx, "exports/912345602/fleet.csv", "", &buf)
		if err == nil && strings.Contains(buf.String(), "\nEL10003,WVWZZZ1KZAW000003,17051743229,Per Olsen,2026-11-01,\n") &&
			strings.Contains(buf.String(), "\nEL10004,WVWZZZ1KZAW000004,,,,\n") {
			t.Logf("export rewritten %s after the snapshot", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("no export with the snapshot's changes within a minute (%v):\n%s", err, buf.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The same snapshot again: the registry already says it all.
	if again := submit("--snapshot"); !strings.Contains(again, "(applied 0, unchanged 11, rejected 0)") {
		t.Errorf("the snapshot again:\n%s", again)
	}
}
