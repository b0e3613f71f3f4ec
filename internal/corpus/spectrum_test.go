package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
)

// spectrumColumns stand in for a csv-spectrum file's own header: ingest
// reads only files whose header names our columns, and these five take any
// text unchanged (validation is not run here).
var spectrumColumns = []lessee.Column{
	lessee.ColOperation, lessee.ColRegistrationNumber, lessee.ColVIN,
	lessee.ColLesseeName, lessee.ColReference,
}

// spectrumErrata corrects the expectations csv-spectrum gets wrong itself:
// file -> column -> the value its CSV really holds.
var spectrumErrata = map[string]map[string]string{
	// The JSON has a placeholder phone number, not the CSV's.
	"location_coordinates": {"Contact Phone Number": "2095257564"},
}

// TestCSVSpectrum reads the csv-spectrum acid tests through the public
// ingest path: each file's header line is replaced by canonical column
// names (same count, same line end), the body is kept byte for byte, and
// every record's fields and spreadsheet row number are compared with the
// package's JSON. One rule of ingest differs from csv-spectrum's JSON and
// is applied to the expectation: cell values are trimmed of surrounding
// spaces. A line break inside a quoted cell is read as the file has it
// (CRLF in newlines_crlf), as the JSON says.
func TestCSVSpectrum(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(corpusDir, "csv-spectrum")
	files, err := filepath.Glob(filepath.Join(dir, "csvs", "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("found %d csv-spectrum files, want 12", len(files))
	}
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".csv")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			names, expect := spectrumExpectations(t, filepath.Join(dir, "json", name+".json"), raw)
			for col, v := range spectrumErrata[name] {
				for _, rec := range expect {
					rec[col] = v
				}
			}
			rows := readSpectrum(t, raw, len(names))
			if len(rows) != len(expect) {
				t.Fatalf("read %d records, want %d", len(rows), len(expect))
			}
			for i, row := range rows {
				if row.Index != i || row.Line != i+2 {
					t.Errorf("record %d: index %d, row %d; want %d, %d", i, row.Index, row.Line, i, i+2)
				}
				if row.Problem != nil {
					t.Errorf("record %d: problem %+v", i, row.Problem)
				}
				for j, col := range names {
					want := strings.TrimSpace(expect[i][col])
					if got := row.Cells[spectrumColumns[j]].Value; got != want {
						t.Errorf("record %d, %q = %q, want %q", i, col, got, want)
					}
				}
			}
		})
	}
}

// spectrumExpectations returns the file's column names, from its header
// line, and the JSON records (one object or an array of them).
func spectrumExpectations(t *testing.T, jsonPath string, csvRaw []byte) ([]string, []map[string]string) {
	t.Helper()
	head, _, _ := bytes.Cut(csvRaw, []byte("\n"))
	names := strings.Split(strings.TrimSuffix(string(head), "\r"), ",")
	if len(names) > len(spectrumColumns) {
		t.Fatalf("%d columns; the test maps at most %d", len(names), len(spectrumColumns))
	}
	js, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]string
	if err := json.Unmarshal(js, &recs); err != nil {
		var one map[string]string
		if err := json.Unmarshal(js, &one); err != nil {
			t.Fatalf("parse %s: %v", jsonPath, err)
		}
		recs = []map[string]string{one}
	}
	return names, recs
}

// readSpectrum swaps the header line for canonical names and reads every
// record with ingest.
func readSpectrum(t *testing.T, raw []byte, n int) []lessee.RawRow {
	t.Helper()
	i := bytes.IndexByte(raw, '\n')
	end := i
	if end > 0 && raw[end-1] == '\r' {
		end--
	}
	canon := make([]string, n)
	for j := range canon {
		canon[j] = spectrumColumns[j].String()
	}
	body := append([]byte(strings.Join(canon, ",")), raw[end:]...)
	p := filepath.Join(t.TempDir(), "spectrum.csv")
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := ingest.Scan(ctx, p, ingest.DefaultLimits())
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if info.Delimiter != ',' || info.Encoding != "UTF-8" {
		t.Errorf("read as %q %s, want ',' UTF-8", info.Delimiter, info.Encoding)
	}
	tab, _, err := ingest.Open(ctx, p, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	var rows []lessee.RawRow
	for {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if len(rows) != info.Rows {
		t.Errorf("Scan counted %d rows, Next gave %d", info.Rows, len(rows))
	}
	return rows
}
