package receipt

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
)

// openReceipt opens a written receipt workbook and returns it with its rows.
func openReceipt(t *testing.T, b []byte) (*excelize.File, [][]string) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("open receipt: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if got := f.GetSheetList(); len(got) != 1 || got[0] != SheetName {
		t.Fatalf("sheets = %q, want [%s]", got, SheetName)
	}
	rows, err := f.GetRows(SheetName, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return f, rows
}

// fillOf returns the fill colour of a cell, "" if none.
func fillOf(t *testing.T, f *excelize.File, cell string) string {
	t.Helper()
	id, err := f.GetCellStyle(SheetName, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
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

// checkTextCells asserts every cell of every line, the row number and empty
// cells included, is a string cell with no formula. It reads the cell type,
// since GetRows gives a number cell's value as text too.
func checkTextCells(t *testing.T, f *excelize.File, rows [][]string) {
	t.Helper()
	for r, row := range rows {
		for c := range row {
			name, _ := excelize.CoordinatesToCellName(c+1, r+1)
			formula, err := f.GetCellFormula(SheetName, name)
			if err != nil || formula != "" {
				t.Errorf("%s has formula %q (%v)", name, formula, err)
			}
			typ, err := f.GetCellType(SheetName, name)
			if err != nil {
				t.Fatal(err)
			}
			if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
				t.Errorf("%s = %q has type %v, want a string cell", name, row[c], typ)
			}
		}
	}
}

func TestXLSXWriter(t *testing.T) {
	t.Parallel()
	outcomes := []lessee.Result{
		{Line: 2, Echo: lessee.Echo{Reference: "=HYPERLINK(\"http://x\")", Operation: "add", RegistrationNumber: "EL10001", Lessee: "*********49"},
			Status: lessee.StatusApplied, Message: "lessee added", ChangeID: "job-0"},
		{Line: 3, Echo: lessee.Echo{Reference: "+47 22 00 00 00", Operation: "remove", VIN: "WVWZZZ1KZAW000005"},
			Status: lessee.StatusRejected, Code: lessee.CodeNoActiveLessee, Message: "-no open period"},
		{Line: 5, Echo: lessee.Echo{Reference: "@SUM(A1)", Operation: "add", RegistrationNumber: "EL10003"},
			Status: lessee.StatusUnchanged, Message: "\tsame lessee"},
	}
	var buf bytes.Buffer
	err := WriteXLSXReceipt(&buf, XLSXOptions{TempDir: t.TempDir()}, func(yield func(lessee.Result) error) error {
		for _, o := range outcomes {
			if err := yield(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, rows := openReceipt(t, buf.Bytes())
	want := [][]string{
		Header(),
		{"2", "'=HYPERLINK(\"http://x\")", "add", "EL10001", "", "*********49", "applied", "", "lessee added", "job-0"},
		{"3", "'+47 22 00 00 00", "remove", "", "WVWZZZ1KZAW000005", "", "rejected", "NO_ACTIVE_LESSEE", "'-no open period"},
		{"5", "'@SUM(A1)", "add", "EL10003", "", "", "unchanged", "", "'\tsame lessee"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		if got := strings.Join(rows[i], "|"); got != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i+1, rows[i], want[i])
		}
	}
	checkTextCells(t, f, rows)
	for _, cell := range []string{"A2", "A3", "A4"} {
		if typ, _ := f.GetCellType(SheetName, cell); typ != excelize.CellTypeInlineString {
			t.Errorf("row number %s has cell type %v, want an inline string", cell, typ)
		}
	}
	for cell, fill := range map[string]string{"A2": "", "I2": "", "A3": rejectedFill, "G3": rejectedFill, "J3": rejectedFill, "B4": ""} {
		if got := fillOf(t, f, cell); got != fill {
			t.Errorf("fill of %s = %q, want %q", cell, got, fill)
		}
	}
	panes, err := f.GetPanes(SheetName)
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("header row not frozen: %+v %v", panes, err)
	}
}

func TestXLSXOriginal(t *testing.T) {
	t.Parallel()
	userHeader := []string{"Operasjon", "Kjennemerke", "Leietaker", "=Merknad", "Fra dato"}
	type row struct {
		cells []string
		o     lessee.Result
	}
	rows := []row{
		{[]string{"add", "EL10001", "12128822249", "ok", "2026-01-01"},
			lessee.Result{Line: 2, Status: lessee.StatusApplied, Message: "lessee added", ChangeID: "j-0"}},
		{[]string{"add", "EL10002", "912345602", "-5", "01.13.2026", "extra"},
			lessee.Result{Line: 4, Status: lessee.StatusRejected, Code: lessee.CodeRaggedRow, Message: "row has 6 fields, header has 5"}},
		{[]string{"remove", "EL10003"},
			lessee.Result{Line: 5, Status: lessee.StatusUnchanged, Message: "already ended"}},
	}
	var buf bytes.Buffer
	err := WriteXLSX(&buf, XLSXOptions{}, userHeader, func(yield func([]string, lessee.Result) error) error {
		for _, r := range rows {
			if err := yield(r.cells, r.o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, got := openReceipt(t, buf.Bytes())
	want := [][]string{
		{"row", "Operasjon", "Kjennemerke", "Leietaker", "'=Merknad", "Fra dato", "status", "code", "message", "change_id"},
		// The identity number is masked; the orgnr, a 9-digit run, is not.
		{"2", "add", "EL10001", "*********49", "ok", "2026-01-01", "applied", "", "lessee added", "j-0"},
		// The cell past the header is dropped; the outcome says why.
		{"4", "add", "EL10002", "912345602", "'-5", "01.13.2026", "rejected", "RAGGED_ROW", "row has 6 fields, header has 5"},
		{"5", "remove", "EL10003", "", "", "", "unchanged", "", "already ended"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if g := strings.Join(got[i], "|"); g != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i+1, got[i], want[i])
		}
	}
	checkTextCells(t, f, got)
	if fillOf(t, f, "D3") != rejectedFill || fillOf(t, f, "D2") != "" {
		t.Errorf("rejected row not marked: D2 %q, D3 %q", fillOf(t, f, "D2"), fillOf(t, f, "D3"))
	}
}

func TestXLSXRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		w    func() (*XLSXWriter, error)
		want []string
	}{
		{"Standard", func() (*XLSXWriter, error) { return NewXLSXWriter(XLSXOptions{}) },
			[]string{"7", "", "", "", "", "", "refused", "MISSING_COLUMN", "row 7: the header lacks \"operation\""}},
		{"Original", func() (*XLSXWriter, error) { return NewXLSXOriginalWriter(XLSXOptions{}, []string{"a", "b"}) },
			[]string{"7", "", "", "refused", "MISSING_COLUMN", "row 7: the header lacks \"operation\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := tc.w()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteRefusal(7, lessee.CodeMissingColumn, `row 7: the header lacks "operation"`); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := w.Finish(&buf); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(lessee.Result{}); err == nil {
				t.Error("Write after Finish succeeded")
			}
			f, rows := openReceipt(t, buf.Bytes())
			if len(rows) != 2 || strings.Join(rows[1], "|") != strings.Join(tc.want, "|") {
				t.Fatalf("rows = %q, want header and %q", rows, tc.want)
			}
			if fillOf(t, f, "A2") != rejectedFill {
				t.Error("refusal line not marked")
			}
			checkTextCells(t, f, rows)
		})
	}
}

func TestWriteXLSXReceiptStopsOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var buf bytes.Buffer
	err := WriteXLSXReceipt(&buf, XLSXOptions{}, func(yield func(lessee.Result) error) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes of a failed receipt", buf.Len())
	}
}

// maxWrite records the largest single Write it was given.
type maxWrite struct {
	total, largest int
}

func (m *maxWrite) Write(b []byte) (int, error) {
	m.total += len(b)
	m.largest = max(m.largest, len(b))
	return len(b), nil
}

// TestXLSXFinishStreams checks that a large receipt reaches its writer in
// small pieces as it is zipped, not as one workbook assembled in memory and
// written at the end (excelize's own WriteTo), and that the streamed
// workbook opens with every line.
func TestXLSXFinishStreams(t *testing.T) {
	t.Parallel()
	const lines = 60000
	w, err := NewXLSXWriter(XLSXOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range lines {
		o := lessee.Result{Index: i, Line: i + 2, Status: lessee.StatusRejected, Code: lessee.CodeVehicleNotFound,
			Message: "no vehicle has this VIN or registration number",
			Echo:    lessee.Echo{Reference: "R" + strings.Repeat("x", 40), VIN: "WVWZZZ1JZXW000001", Operation: "add"}}
		if err := w.Write(o); err != nil {
			t.Fatal(err)
		}
	}
	var counted maxWrite
	var buf bytes.Buffer
	if err := w.Finish(io.MultiWriter(&counted, &buf)); err != nil {
		t.Fatal(err)
	}
	if counted.total < 1<<20 || counted.largest > 256<<10 {
		t.Errorf("workbook of %d bytes written with a largest write of %d bytes", counted.total, counted.largest)
	}
	_, rows := openReceipt(t, buf.Bytes())
	if len(rows) != lines+1 || rows[lines][0] != strconv.Itoa(lines+1) || rows[lines][6] != string(lessee.StatusRejected) {
		t.Fatalf("%d rows; last %q", len(rows), rows[len(rows)-1])
	}
}

// BenchmarkXLSXReceipt writes a receipt of 100,000 lines in the original
// layout and finishes it to a file: the receipt of a large XLSX upload.
func BenchmarkXLSXReceipt(b *testing.B) {
	cells := []string{"add", "EL12345", "WVWZZZ1JZXW000001", "12128822249", "Nordmann", "2026-01-01", "", "", "R0000001-applied"}
	header := []string{"operation", "registration_number", "vin", "lessee_id", "lessee_name", "start_date", "end_date", "on_behalf_of", "reference"}
	const lines = 100_000
	for b.Loop() {
		w, err := NewXLSXOriginalWriter(XLSXOptions{TempDir: b.TempDir()}, header)
		if err != nil {
			b.Fatal(err)
		}
		for i := range lines {
			r := lessee.Result{Index: i, Line: i + 2, Status: lessee.StatusApplied, ChangeID: "job-" + strconv.Itoa(i)}
			if i%7 == 0 {
				r.Status, r.Code, r.Message = lessee.StatusRejected, lessee.CodeLesseeConflict, "the period overlaps the lessee registered from 2027-01-01"
			}
			if err := w.WriteOriginal(cells, r); err != nil {
				b.Fatal(err)
			}
		}
		f, err := os.CreateTemp(b.TempDir(), "receipt-*.xlsx")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := w.Finish(f); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "finish-ms")
		if st, err := f.Stat(); err == nil {
			b.ReportMetric(float64(st.Size())/lines, "bytes/line")
		}
		_ = f.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
