package ingest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/fleetreg/lessee"
)

// record is a record as a table gives it, with its original cells.
type record struct {
	Row  lessee.RawRow
	Orig []string
}

func readRecords(t *testing.T, tab OriginalTable) ([]record, error) {
	t.Helper()
	defer tab.Close()
	var out []record
	for {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, record{row, slices.Clone(tab.Original())})
	}
}

// TestSpoolReadsBackTheWorkbook compares, for every workbook of the corpus,
// the records and Info read back from the spool with those read from the
// file itself, and checks that a refused workbook leaves no spool behind.
func TestSpoolReadsBackTheWorkbook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files, err := filepath.Glob("../testdata/corpus/inbox/*/*.xlsx")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus workbooks: %v %v", files, err)
	}
	// Counted by the parallel subtests; checked once they have all run.
	var accepted atomic.Int64
	t.Cleanup(func() {
		if n := accepted.Load(); n < 5 {
			t.Errorf("only %d corpus workbooks were accepted", n)
		}
	})
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			spool := filepath.Join(t.TempDir(), "records")
			info, err := ScanSpooled(ctx, file, DefaultLimits(), spool)
			scanInfo, scanErr := Scan(ctx, file, DefaultLimits())
			if !reflect.DeepEqual(err, scanErr) {
				t.Fatalf("ScanSpooled err = %v, Scan err = %v", err, scanErr)
			}
			if err != nil {
				if _, serr := os.Stat(spool); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("refused workbook left a spool: %v", serr)
				}
				return
			}
			accepted.Add(1)
			if info.Spool != spool {
				t.Fatalf("Info.Spool = %q, want %q", info.Spool, spool)
			}
			info.Spool = ""
			if !reflect.DeepEqual(info, scanInfo) {
				t.Errorf("ScanSpooled info = %+v\nScan info = %+v", info, scanInfo)
			}

			fileTab, fileInfo, err := Open(ctx, file, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			want, err := readRecords(t, fileTab.(OriginalTable))
			if err != nil {
				t.Fatal(err)
			}
			spoolTab, spoolInfo, err := OpenSpool(ctx, spool)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readRecords(t, spoolTab)
			if err != nil {
				t.Fatal(err)
			}
			spoolInfo.Spool = ""
			if !reflect.DeepEqual(spoolInfo, fileInfo) {
				t.Errorf("spool info = %+v\nfile info = %+v", spoolInfo, fileInfo)
			}
			if len(got) != info.Rows || !reflect.DeepEqual(got, want) {
				t.Errorf("spool records differ from the workbook's (%d and %d records, %d counted)", len(got), len(want), info.Rows)
			}
		})
	}
}

func TestSpoolCSVWritesNothing(t *testing.T) {
	t.Parallel()
	spool := filepath.Join(t.TempDir(), "records")
	info, err := ScanSpooled(context.Background(), "testdata/comma_lf.csv", DefaultLimits(), spool)
	if err != nil {
		t.Fatal(err)
	}
	if info.Spool != "" || info.Rows == 0 {
		t.Errorf("info = %+v", info)
	}
	if _, err := os.Stat(spool); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a CSV file left a spool: %v", err)
	}
}

// TestSpoolDamaged checks that a spool cut anywhere, or not a spool at all,
// reads as an error, never as a shorter table.
func TestSpoolDamaged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	spool := filepath.Join(dir, "records")
	info, err := ScanSpooled(ctx, "../testdata/corpus/inbox/912345602/libreoffice-all-outcomes.xlsx", DefaultLimits(), spool)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(spool)
	if err != nil {
		t.Fatal(err)
	}
	ends := 0 // cuts that fall between records read as the end
	for cut := 0; cut < len(whole); cut++ {
		p := filepath.Join(dir, "cut")
		if err := os.WriteFile(p, whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		tab, _, err := OpenSpool(ctx, p)
		if err != nil {
			continue
		}
		recs, err := readRecords(t, tab)
		if err == nil {
			if len(recs) >= info.Rows {
				t.Fatalf("spool cut at %d of %d bytes read back whole", cut, len(whole))
			}
			ends++
		}
	}
	// Only a cut exactly between two records (or after the head) looks
	// like a shorter spool; the worker never meets one, since it counts
	// records in the first pass and the checkpoint check needs them all.
	if ends > info.Rows+1 {
		t.Errorf("%d cuts read as a clean end; at most %d record boundaries exist", ends, info.Rows+1)
	}
	if _, _, err := OpenSpool(ctx, "testdata/comma_lf.csv"); err == nil {
		t.Error("a CSV file opened as a spool")
	}
}
