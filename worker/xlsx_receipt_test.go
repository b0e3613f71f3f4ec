package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// rejectedFill is the fill of rejected and refused receipt lines.
const rejectedFill = "FFC7CE"

// putWorkbook uploads the workbook build writes and returns its payload.
func (b *testBundle) putWorkbook(t *testing.T, key string, build func(f *excelize.File)) IngestPayload {
	t.Helper()
	ctx := context.Background()
	f := excelize.NewFile()
	defer f.Close()
	build(f)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := b.objects.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	o, err := b.objects.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size, Version: intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)}}
}

func sheetRow(t *testing.T, f *excelize.File, n int, values ...any) {
	t.Helper()
	cell, err := excelize.CoordinatesToCellName(1, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetSheetRow("Sheet1", cell, &values); err != nil {
		t.Fatal(err)
	}
}

// leietakere is a workbook as a Norwegian leasing company might send it:
// Norwegian headers, columns the service does not know (one of them
// numeric, one with a formula trigger in its name), date cells and text
// dates, a blank row, a ragged row and cells that look like formulas.
func leietakere(t *testing.T) func(f *excelize.File) {
	return func(f *excelize.File) {
		t.Helper()
		date, err := f.NewStyle(&excelize.Style{NumFmt: 14})
		if err != nil {
			t.Fatal(err)
		}
		day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
		sheetRow(t, f, 1, "Operasjon", "Kjennemerke", "Kommentar", "Leasingtaker", "Fra dato", "Til dato", "Internt nr", "Referanse", "@Merknad")
		sheetRow(t, f, 2, "add", "EL 10001", `=HYPERLINK("http://x","klikk")`, "12128822249", day(1), "", 7, "R-001", "ok")
		sheetRow(t, f, 3, "add", "EL10003", "Ærlig Åse", "02079123660", "2025-06-01", "", 8, "R-002")
		// Row 4 is blank.
		sheetRow(t, f, 5, "add", "EL10002", "+47 22 00 00 00", "03030353373", day(15), "", 9, "R-003", "-1")
		sheetRow(t, f, 6, "remove", "EL10004", "", "24126834558", "", "2026-02-01", 10, "R-004")
		sheetRow(t, f, 7, "remove", "EL10005", "", "", "", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 11, "R-005")
		sheetRow(t, f, 8, "change", "EL10007", "", "17051743229", "2026-01-01", "", 12, "R-010")
		sheetRow(t, f, 9, "add", "FJ20001", "", "17051743229", "2026-01-01", "", 13, "R-007", "", "stray")
		for _, c := range []string{"E2", "E5", "F7"} {
			if err := f.SetCellStyle("Sheet1", c, c, date); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// wantLeietakere is the user's part of each line of the XLSX receipt of
// leietakere: the row number, then the cells as uploaded, masked and
// neutralised, the stray cell past the header dropped.
var wantLeietakere = [][]string{
	{"row", "Operasjon", "Kjennemerke", "Kommentar", "Leasingtaker", "Fra dato", "Til dato", "Internt nr", "Referanse", "'@Merknad"},
	{"2", "add", "EL 10001", `'=HYPERLINK("http://x","klikk")`, "*********49", "2026-01-01", "", "7", "R-001", "ok"},
	{"3", "add", "EL10003", "Ærlig Åse", "*********60", "2025-06-01", "", "8", "R-002", ""},
	{"5", "add", "EL10002", "'+47 22 00 00 00", "*********73", "2026-01-15", "", "9", "R-003", "'-1"},
	{"6", "remove", "EL10004", "", "*********58", "", "2026-02-01", "10", "R-004", ""},
	{"7", "remove", "EL10005", "", "", "", "2026-02-01", "11", "R-005", ""},
	{"8", "change", "EL10007", "", "*********29", "2026-01-01", "", "12", "R-010", ""},
	{"9", "add", "FJ20001", "", "*********29", "2026-01-01", "", "13", "R-007", ""},
}

// wantStatus is the status and code of each data line of that receipt.
var wantStatus = [][2]string{
	{"applied", ""}, {"unchanged", ""}, {"rejected", "LESSEE_CONFLICT"}, {"applied", ""},
	{"rejected", "NO_ACTIVE_LESSEE"}, {"rejected", "INVALID_OPERATION"}, {"rejected", "RAGGED_ROW"},
}

// checkNoSpoolFiles asserts that the handler left nothing in its
// temporary directory: upload, record spool and receipts are all removed,
// after a failed attempt as after a finished one.
func checkNoSpoolFiles(t *testing.T, b *testBundle) {
	t.Helper()
	left, err := os.ReadDir(b.handler.cfg.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the temporary directory: %s", e.Name())
	}
}

func TestHandlerXLSXReceiptRepeatsUserRows(t *testing.T) {
	t.Parallel()
	const key = "inbox/912345602/leietakere.xlsx"
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t, sqlstoretest.SQLite(t))
		if err := b.handler.Process(context.Background(), b.putWorkbook(t, key, leietakere(t))); err != nil {
			t.Fatal(err)
		}
		checkOriginalReceipt(t, b, "leietakere.xlsx")
		checkNoSpoolFiles(t, b)
	})
	t.Run("ResumedAfterFailure", func(t *testing.T) {
		t.Parallel()
		// The retry finds the first chunk's results stored and must still
		// pair every row with its own result.
		b := setup(t, sqlstoretest.SQLite(t))
		p := b.putWorkbook(t, key, leietakere(t))
		store := b.handler.store
		b.handler.store = &failAfter{Store: store, chunks: 1}
		if err := b.handler.Process(context.Background(), p); err == nil {
			t.Fatal("expected the injected failure")
		}
		b.handler.store = store
		if err := b.handler.Process(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		checkOriginalReceipt(t, b, "leietakere.xlsx")
		checkNoSpoolFiles(t, b)
	})
	t.Run("RefusalKeepsStandardColumns", func(t *testing.T) {
		t.Parallel()
		b := setup(t, sqlstoretest.SQLite(t))
		p := b.putWorkbook(t, "inbox/912345602/uten-operasjon.xlsx", func(f *excelize.File) {
			sheetRow(t, f, 1, "Kjennemerke", "Leasingtaker", "Kommentar")
			sheetRow(t, f, 2, "EL10001", "12128822249", "x")
		})
		if err := b.handler.Process(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		x, rows := openXLSXReceipt(t, b.get(t, "receipts/912345602/uten-operasjon.xlsx.receipt.xlsx"))
		if len(rows) != 2 || !slices.Equal(rows[0], receipt.Header()) {
			t.Fatalf("rows = %q, want the standard header and one line", rows)
		}
		if got := pad(rows[1], 10); got[6] != receipt.StatusRefused || got[7] != string(lessee.CodeMissingColumn) {
			t.Errorf("refusal line = %q", rows[1])
		}
		if fill := fillOf(t, x, "A2"); fill != rejectedFill {
			t.Errorf("refusal line fill = %q, want %s", fill, rejectedFill)
		}
		checkAllText(t, x, rows, len(receipt.Header()))
	})
}

// checkOriginalReceipt checks the XLSX receipt of the leietakere workbook
// uploaded as name: the user's header and cells per row, in order, then the
// same status, code, message and change id as the receipt CSV; rejected
// lines filled red across the row; no formulas; every cell text.
func checkOriginalReceipt(t *testing.T, b *testBundle, name string) {
	t.Helper()
	x, rows := openXLSXReceipt(t, b.get(t, "receipts/912345602/"+name+".receipt.xlsx"))
	csvRows := receiptRows(t, b.get(t, "receipts/912345602/"+name+".receipt.csv"))
	const width = 14 // row, nine user columns, status, code, message, change_id
	if len(rows) != len(wantLeietakere) || len(csvRows) != len(wantStatus) {
		t.Fatalf("XLSX receipt has %d lines, CSV receipt %d; want %d and %d:\n%q",
			len(rows), len(csvRows), len(wantLeietakere), len(wantStatus), rows)
	}
	if got, want := rows[0][len(wantLeietakere[0]):], []string{"status", "code", "message", "change_id"}; !slices.Equal(got, want) {
		t.Errorf("header ends with %q, want %q", got, want)
	}
	for i, want := range wantLeietakere {
		got := pad(rows[i], width)
		if user := got[:len(want)]; !slices.Equal(user, want) {
			t.Errorf("line %d = %q, want %q", i+1, user, want)
		}
		if i == 0 {
			continue
		}
		// The outcome part matches the CSV receipt's, which the other
		// tests pin down.
		c := csvRows[i-1]
		if tail := got[len(want):]; c[0] != got[0] || !slices.Equal(tail, c[6:10]) {
			t.Errorf("line %d ends %q, CSV receipt row %s has %q", i+1, tail, c[0], c[6:10])
		}
		if st := wantStatus[i-1]; got[len(want)] != st[0] || got[len(want)+1] != st[1] {
			t.Errorf("line %d: status %q code %q, want %q %q", i+1, got[len(want)], got[len(want)+1], st[0], st[1])
		}
		wantFill := ""
		if wantStatus[i-1][0] == string(lessee.StatusRejected) {
			wantFill = rejectedFill
		}
		for col := 1; col <= width; col++ {
			cell, _ := excelize.CoordinatesToCellName(col, i+1)
			if fill := fillOf(t, x, cell); fill != wantFill {
				t.Errorf("%s fill = %q, want %q", cell, fill, wantFill)
			}
		}
	}
	for r, row := range rows {
		for c := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if formula, err := x.GetCellFormula(receipt.SheetName, cell); err != nil || formula != "" {
				t.Errorf("%s has formula %q (%v)", cell, formula, err)
			}
		}
	}
	// Every cell is text, the row number and empty cells included.
	checkAllText(t, x, rows, width)
}

// checkAllText asserts that every cell of the receipt sheet, width cells a
// line (GetRows leaves out trailing empty ones), is a string cell: the
// type, not only the value, which GetRows gives as text for a number too.
func checkAllText(t *testing.T, x *excelize.File, rows [][]string, width int) {
	t.Helper()
	for r := range rows {
		for c := range width {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			typ, err := x.GetCellType(receipt.SheetName, cell)
			if err != nil {
				t.Fatal(err)
			}
			if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
				t.Errorf("%s is a %v cell, want a string", cell, typ)
			}
		}
	}
}

func openXLSXReceipt(t *testing.T, b []byte) (*excelize.File, [][]string) {
	t.Helper()
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	rows, err := x.GetRows(receipt.SheetName, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return x, rows
}

// pad extends row, whose trailing empty cells GetRows drops, to n cells.
func pad(row []string, n int) []string {
	out := make([]string, max(n, len(row)))
	copy(out, row)
	return out
}

// fillOf returns the fill colour of a receipt cell, "" if none.
func fillOf(t *testing.T, x *excelize.File, cell string) string {
	t.Helper()
	id, err := x.GetCellStyle(receipt.SheetName, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := x.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Fill.Type != "pattern" || len(st.Fill.Color) == 0 {
		return ""
	}
	c := strings.ToUpper(st.Fill.Color[0])
	if len(c) == 8 { // ARGB
		c = c[2:]
	}
	return c
}

// fakeTable yields rows with the given lines, each record's only cell
// naming its line.
type fakeTable struct {
	lines []int
	next  int
	err   error // returned instead of the record at index errAt
	errAt int
}

func (f *fakeTable) Next() (lessee.RawRow, error) {
	if f.err != nil && f.next == f.errAt {
		return lessee.RawRow{}, f.err
	}
	if f.next >= len(f.lines) {
		return lessee.RawRow{}, io.EOF
	}
	f.next++
	return lessee.RawRow{Index: f.next - 1, Line: f.lines[f.next-1]}, nil
}

func (f *fakeTable) Original() []string { return []string{fmt.Sprint("line ", f.lines[f.next-1])} }
func (f *fakeTable) Close() error       { return nil }

func TestOriginalCells(t *testing.T) {
	t.Parallel()
	disk := errors.New("disk")
	for _, tc := range []struct {
		name     string
		table    *fakeTable
		outcomes []lessee.Result
		want     []string // cells of the outcomes before any error
		err      string
	}{
		{"OK", &fakeTable{lines: []int{2, 4, 5}},
			[]lessee.Result{{Index: 0, Line: 2}, {Index: 1, Line: 4}, {Index: 2, Line: 5}},
			[]string{"line 2", "line 4", "line 5"}, ""},
		{"ErrMissingRecord", &fakeTable{lines: []int{2}},
			[]lessee.Result{{Index: 0, Line: 2}, {Index: 1, Line: 3}},
			[]string{"line 2"}, "reread file: no record 1 (row 3)"},
		{"ErrOtherRow", &fakeTable{lines: []int{2, 3}},
			[]lessee.Result{{Index: 0, Line: 2}, {Index: 1, Line: 4}},
			[]string{"line 2"}, "reread file: record 1 is row 3, its result says record 1, row 4"},
		{"ErrRead", &fakeTable{lines: []int{2, 3}, err: disk, errAt: 1},
			[]lessee.Result{{Index: 0, Line: 2}, {Index: 1, Line: 3}},
			[]string{"line 2"}, "reread file: disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var err error
			for _, o := range tc.outcomes {
				var cells []string
				if cells, err = originalCells(tc.table, o); err != nil {
					break
				}
				got = append(got, cells...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("cells = %q, want %q", got, tc.want)
			}
			if msg := fmt.Sprint(err); tc.err == "" && err != nil || tc.err != "" && msg != tc.err {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if tc.table.err != nil && !errors.Is(err, tc.table.err) {
				t.Errorf("err = %v does not wrap %v", err, tc.table.err)
			}
		})
	}
}
