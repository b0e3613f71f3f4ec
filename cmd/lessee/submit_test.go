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

	"github.com/fleetreg/lessee/examples"
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
		if !strings.Contains(out.String(), "code:      MISSING_COLUMN") {
			t.Errorf("output lacks the refusal code:\n%s", out.String())
		}
	})

	t.Run("ErrBadOrgnr", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"submit", "--as", "912345603", write("changes/all-outcomes.csv")}, getenv, &out, &errOut); err == nil {
			t.Fatal("submit with an invalid orgnr succeeded")
		}
	})
}
