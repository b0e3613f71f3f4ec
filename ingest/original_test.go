package ingest

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// readOriginal opens path and returns its header as written and each
// record's original cells, copied, with the record's row number.
func readOriginal(t *testing.T, path string) (header []string, lines []int, cells [][]string) {
	t.Helper()
	tab, info, err := Open(context.Background(), path, DefaultLimits())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer tab.Close()
	ot, ok := tab.(OriginalTable)
	if !ok {
		t.Fatalf("%T is not an OriginalTable", tab)
	}
	if ot.Original() != nil {
		t.Errorf("Original before Next = %q, want nil", ot.Original())
	}
	for {
		row, err := ot.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		lines = append(lines, row.Line)
		cells = append(cells, slices.Clone(ot.Original()))
	}
	if ot.Original() != nil {
		t.Errorf("Original after the end = %q, want nil", ot.Original())
	}
	return info.Header, lines, cells
}

func TestOriginal(t *testing.T) {
	t.Parallel()
	xlsx := makeWorkbook(t, func(f *excelize.File) {
		s := "Sheet1"
		setRow(t, f, s, 1, "Operasjon", "Internt nr", "Kjennemerke", "", "Leietaker", "Fra dato", "Merknad 12128822249")
		setRow(t, f, s, 2, "add", 7, " AB12345 ", "", 12128822249, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), true)
		must(t, f.SetCellStyle(s, "F2", "F2", dateStyle(t, f, "")))
		// Row 3 is blank; row 4 is ragged and short of the date.
		setRow(t, f, s, 4, "remove", "", "CD67890")
		must(t, f.SetCellValue(s, "J4", "stray"))
		must(t, f.SetCellFormula(s, "G5", `"x"&"y"`))
		must(t, f.SetCellValue(s, "A5", "=not a formula"))
	})
	tests := []struct {
		name   string
		path   string
		header []string
		lines  []int
		cells  [][]string
	}{
		{
			// Ignored columns and an empty header cell keep their place.
			name: "CSVIgnoredColumns", path: fixture("ignored_columns.csv"),
			header: []string{"operation", "Kommentar", "registration_number", "", "Internt nr"},
			lines:  []int{2},
			cells:  [][]string{{"add", "hei", "AB12345", "", "7"}},
		},
		{
			// Cells are untrimmed; the BOM is not part of the first name.
			name: "CSVNorwegianHeaderBOM", path: fixture("utf8_bom_crlf.csv"),
			header: []string{"Operasjon", "Kjennemerke", "Leietaker", "Etternavn", "Fra dato", "Referanse"},
			lines:  []int{2, 3},
			cells: [][]string{
				{"add", "AB12345", "910000001", "Bjørnstad", "15.01.2024", "r1"},
				{"add", " EF 22222 ", "910000001", "Ærø Å", "2024-03-01", "r2"},
			},
		},
		{
			// A ragged record keeps its extra cell; trailing empty ones go.
			name: "CSVRagged", path: fixture("ragged.csv"),
			header: []string{"operation", "registration_number", "reference"},
			lines:  []int{2, 3, 4},
			cells:  [][]string{{"add", "AB12345", "r1", "extra"}, {"add", "CD67890"}, {"add", "EF11111", "r3"}},
		},
		{
			name: "XLSX", path: xlsx,
			// A header that holds an identity number is masked.
			header: []string{"Operasjon", "Internt nr", "Kjennemerke", "", "Leietaker", "Fra dato", "Merknad 121288*****"},
			lines:  []int{2, 4, 5},
			cells: [][]string{
				{"add", "7", " AB12345 ", "", "12128822249", "2026-01-15", "TRUE"},
				{"remove", "", "CD67890", "", "", "", "", "", "", "stray"},
				// A formula gives its cached value (none here, as excelize
				// computes none), never its text.
				{"=not a formula"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header, lines, cells := readOriginal(t, tt.path)
			if !slices.Equal(header, tt.header) {
				t.Errorf("Header = %q, want %q", header, tt.header)
			}
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("lines = %v, want %v", lines, tt.lines)
			}
			if len(cells) != len(tt.cells) {
				t.Fatalf("got %d records, want %d: %q", len(cells), len(tt.cells), cells)
			}
			for i := range tt.cells {
				if !slices.Equal(cells[i], tt.cells[i]) {
					t.Errorf("record %d = %q, want %q", i, cells[i], tt.cells[i])
				}
			}
		})
	}
}
