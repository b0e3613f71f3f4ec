package worker

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

var update = flag.Bool("update", false, "rewrite the golden receipts in testdata/golden")

// goldenSubmitters says who uploads each example: the third-party file is
// the partner's, acting for fleet owners.
var goldenSubmitters = map[string]string{"third-party.csv": "912345629"}

// summaryClock matches the summary's wall-clock fields, which are the only
// part of a receipt that may differ between two runs of one upload.
var summaryClock = regexp.MustCompile(`(?m)^  "(started|finished|duration_ms)": .*$`)

// TestExampleReceiptsGolden: every example change file, processed with a
// fixed clock and upload version, gives byte for byte the receipt and
// summary in testdata/golden. A refactoring must leave them unchanged; run
// with -update only when a receipt is meant to change.
func TestExampleReceiptsGolden(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(examples.FS(), "changes/*.csv")
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, 3, 15, 9, 30, 0, 0, time.UTC) }
	for _, name := range names {
		if strings.HasSuffix(name, ".expected.csv") {
			continue
		}
		base := filepath.Base(name)
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := sqlstoretest.SQLite(t)
			store.Now = clock
			b := setup(t, store)
			b.handler.Now = clock
			submitter := goldenSubmitters[base]
			if submitter == "" {
				submitter = "912345602"
			}
			p := b.put(t, "inbox/"+submitter+"/"+base, name)
			p.Version = "golden-1" // a fixed job id, so change ids are stable
			if err := b.handler.Process(ctx, p); err != nil {
				t.Fatal(err)
			}
			prefix := "receipts/" + submitter + "/" + base
			compareGolden(t, base+".receipt.csv", b.get(t, prefix+".receipt.csv"))
			summary := summaryClock.ReplaceAllString(string(b.get(t, prefix+".summary.json")), `  "$1": "(clock)",`)
			compareGolden(t, base+".summary.json", []byte(summary))
		})
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestSnapshotExample keeps the README's worked example true: the demo
// snapshot (examples/snapshot/fleet.csv) as a dry run on the demo
// registry gives the dry-run receipt beside it, the fleet's export as the
// demo registry has it is the export beside it, and that export uploaded
// as a snapshot keeps every vehicle. The clock is fixed on the day the
// files were made; run with -update to rewrite them.
func TestSnapshotExample(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := func() time.Time { return time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC) }
	store := sqlstoretest.SQLite(t)
	store.Now = clock
	b := setup(t, store)
	b.handler.Now = clock

	w := export.New(store, b.objects, export.Config{TempDir: t.TempDir(), Now: clock})
	if _, err := w.Write(ctx, demoFleet); err != nil {
		t.Fatal(err)
	}
	exported := b.get(t, "exports/"+demoFleet+"/fleet.csv")
	compareExample(t, "fleet.export.csv", exported)

	p := b.put(t, "dryrun-snapshot/"+demoFleet+"/fleet.csv", "snapshot/fleet.csv")
	p.Version = "example-1"
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	compareExample(t, "fleet.csv.dryrun.receipt.csv", b.get(t, "receipts/"+demoFleet+"/fleet.csv.dryrun.receipt.csv"))

	job := b.process(t, "snapshot/"+demoFleet+"/exported.csv", exported)
	if job.RowsTotal != 11 || job.Operations[lessee.OpKeep] != 11 {
		t.Errorf("the demo export as a snapshot: %d rows, operations %v; want 11 keep", job.RowsTotal, job.Operations)
	}
}

// compareExample compares got with examples/snapshot/name, or writes it
// there with -update.
func compareExample(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "examples", "snapshot", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := fs.ReadFile(examples.FS(), "snapshot/"+name)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("examples/snapshot/%s differs (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
