package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
)

// fuzzLimits are small so that the limit paths are reached too.
func fuzzLimits() Limits {
	return Limits{MaxBytes: 1 << 20, MaxRows: 50, MaxCellBytes: 64, MaxColumns: 12,
		MaxUnzipBytes: 4 << 20, MaxUnzipXMLBytes: 1 << 20}
}

// checkPasses runs Scan and, when it succeeds, Open, and asserts they agree
// and that the records are well formed.
func checkPasses(t *testing.T, dir string, data []byte) {
	t.Helper()
	// One directory per fuzz target, not per input: creating one per input
	// costs more than the parse.
	tmp, err := os.CreateTemp(dir, "upload")
	if err != nil {
		t.Fatal(err)
	}
	p := tmp.Name()
	defer os.Remove(p)
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	limits := fuzzLimits()
	info, err := Scan(ctx, p, limits)
	if err != nil {
		var r *lessee.Error
		if !errors.As(err, &r) {
			t.Fatalf("Scan failed without a refusal: %v", err)
		}
		if r.Message == "" || r.Code == "" {
			t.Fatalf("empty refusal %+v", r)
		}
		return
	}
	tab, _, err := Open(ctx, p, limits)
	if err != nil {
		t.Fatalf("Open after a successful Scan: %v", err)
	}
	defer tab.Close()
	if len(info.Header) == 0 || len(info.Header) > limits.MaxColumns {
		t.Fatalf("Header has %d names", len(info.Header))
	}
	n, prevLine := 0, info.HeaderLine
	for {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after a successful Scan: %v", err)
		}
		if row.Index != n {
			t.Fatalf("Index %d, want %d", row.Index, n)
		}
		if row.Line <= prevLine {
			t.Fatalf("Line %d after %d: lines must increase past the header", row.Line, prevLine)
		}
		for _, c := range row.Cells {
			if c.Value != strings.TrimSpace(c.Value) || len(c.Value) > limits.MaxCellBytes {
				t.Fatalf("cell %q is untrimmed or over the limit", c.Value)
			}
		}
		// The record as uploaded holds every value the row was made of.
		orig := tab.(OriginalTable).Original()
		if len(orig) == 0 || len(orig) > limits.MaxColumns {
			t.Fatalf("Original has %d cells", len(orig))
		}
		for _, c := range row.Cells {
			if c.Value != "" && !slices.ContainsFunc(orig, func(o string) bool { return strings.TrimSpace(o) == c.Value }) {
				t.Fatalf("cell %q is not among the original cells %q", c.Value, orig)
			}
		}
		prevLine = row.Line
		n++
	}
	if n != info.Rows {
		t.Fatalf("Open yielded %d records, Scan counted %d", n, info.Rows)
	}
}

func FuzzCSV(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Add([]byte("operation;vin\r\nadd;\"a\r\nb\"\r\n\r\nremove;x;y\r"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPasses(t, dir, data)
	})
}

func FuzzHeader(f *testing.F) {
	f.Add("operation;registration_number;vin;lessee_id")
	f.Add("Operasjon;Kjennemerke;Fra dato;Fra-dato")
	f.Add("handling;;På vegne av;01019012345")
	f.Add("x")
	f.Fuzz(func(t *testing.T, line string) {
		cells := strings.Split(line, ";")
		h, err := mapHeader(cells, 1, DefaultLimits())
		if err != nil {
			var r *lessee.Error
			if !errors.As(err, &r) {
				t.Fatalf("mapHeader failed without a refusal: %v", err)
			}
			return
		}
		if h.info.Columns[lessee.ColOperation] == "" ||
			h.info.Columns[lessee.ColRegistrationNumber] == "" && h.info.Columns[lessee.ColVIN] == "" {
			t.Fatalf("accepted a header without the required columns: %+v", h.info.Columns)
		}
		seen := map[lessee.Column]bool{}
		for i, c := range h.col {
			if c < 0 {
				continue
			}
			if seen[c] {
				t.Fatalf("column %s mapped twice", c)
			}
			seen[c] = true
			if got, ok := columnFor(cells[i]); !ok || got != c {
				t.Fatalf("cell %q mapped to %s, columnFor says %s %v", cells[i], c, got, ok)
			}
			if h.info.Columns[c] != strings.TrimSpace(cells[i]) {
				t.Fatalf("Columns[%s] = %q, want %q as written", c, h.info.Columns[c], cells[i])
			}
		}
		for _, name := range h.info.IgnoredColumns {
			if _, ok := columnFor(name); ok && !strings.Contains(name, "*") {
				t.Fatalf("known name %q listed as ignored", name)
			}
		}
	})
}

func FuzzXLSX(f *testing.F) {
	seed := func(build func(x *excelize.File)) {
		p := makeWorkbook(f, build)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(func(x *excelize.File) {
		setRow(f, x, "Sheet1", 1, "operation", "vin", "start_date")
		setRow(f, x, "Sheet1", 2, "add", "V", 45306)
		must(f, x.SetCellStyle("Sheet1", "C2", "C2", dateStyle(f, x, "")))
		setRow(f, x, "Sheet1", 4, "remove", 12345678901, "x", "y")
	})
	seed(func(x *excelize.File) {
		setRow(f, x, "Sheet1", 1, "regnr")
	})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPasses(t, dir, data)
	})
}

// FuzzOpenSpool reads arbitrary bytes as a record spool: an error or
// records, never a panic or a runaway allocation.
func FuzzOpenSpool(f *testing.F) {
	spool := filepath.Join(f.TempDir(), "seed")
	if _, err := ScanSpooled(context.Background(), "../testdata/corpus/inbox/912345602/libreoffice-all-outcomes.xlsx", DefaultLimits(), spool); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(spool)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(spoolMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, _, err := readSpool(context.Background(), io.NopCloser(bytes.NewReader(b)))
		if err != nil {
			return
		}
		defer tab.Close()
		for {
			if _, err := tab.Next(); err != nil {
				return
			}
		}
	})
}
