package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetreg/lessee/gen"
)

func TestRunGen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	noEnv := func(string) string { return "" }

	var out bytes.Buffer
	// Flags after the positional argument, as the README writes them.
	if err := genGroup().run(ctx, []string{"registry", regDir, "--vehicles", "300", "--enterprises", "12", "--seed", "5"}, noEnv, &out, &out); err != nil {
		t.Fatalf("gen registry: %v\n%s", err, out.String())
	}
	reg, err := gen.ReadRegistry(regDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Vehicles) != 300 || len(reg.Enterprises) != 12 {
		t.Errorf("registry has %d vehicles, %d enterprises", len(reg.Vehicles), len(reg.Enterprises))
	}
	want, err := gen.NewRegistry(gen.RegistryConfig{Seed: 5, Enterprises: 12, Vehicles: 300})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Vehicles[0].VIN != want.Vehicles[0].VIN {
		t.Errorf("--seed not applied: first vin %s, want %s", reg.Vehicles[0].VIN, want.Vehicles[0].VIN)
	}

	file := filepath.Join(dir, "changes.csv")
	env := map[string]string{"LESSEE_ROWS": "250"} // flags also read the environment
	out.Reset()
	if err := genGroup().run(ctx, []string{"changes", "--registry", regDir, file, "--seed", "2"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatalf("gen changes: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 251 {
		t.Errorf("change file has %d lines, want 251", n)
	}
	if !strings.Contains(out.String(), "inbox/"+reg.LargestFleet()+"/changes.csv") {
		t.Errorf("output does not say where to upload: %s", out.String())
	}

	t.Run("ErrNoRegistry", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		if err := genGroup().run(ctx, []string{"changes", file}, noEnv, &out, &out); err == nil {
			t.Error("gen changes without --registry succeeded")
		}
	})
	t.Run("ErrUnknownCommand", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		if err := genGroup().run(ctx, []string{"bogus"}, noEnv, &out, &out); err == nil {
			t.Error("gen bogus succeeded")
		}
	})
}
