package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
)

// makeWorkbook builds a workbook with build and saves it in a temporary
// directory.
func makeWorkbook(t testing.TB, build func(f *excelize.File), opts ...excelize.Options) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	build(f)
	p := filepath.Join(t.TempDir(), "book.xlsx")
	if err := f.SaveAs(p, opts...); err != nil {
		t.Fatalf("save workbook: %v", err)
	}
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setRow writes values from column A of row n.
func setRow(t testing.TB, f *excelize.File, sheet string, n int, values ...any) {
	t.Helper()
	cell, err := excelize.CoordinatesToCellName(1, n)
	must(t, err)
	must(t, f.SetSheetRow(sheet, cell, &values))
}

func dateStyle(t testing.TB, f *excelize.File, custom string) int {
	t.Helper()
	st := &excelize.Style{NumFmt: 14}
	if custom != "" {
		st = &excelize.Style{CustomNumFmt: &custom}
	}
	id, err := f.NewStyle(st)
	must(t, err)
	return id
}

func TestXLSX(t *testing.T) {
	t.Parallel()
	p := makeWorkbook(t, func(f *excelize.File) {
		// A first sheet that is not the data: the sheet named lessees wins.
		setRow(t, f, "Sheet1", 1, "notes")
		_, err := f.NewSheet("LESSEES")
		must(t, err)
		s := "LESSEES"
		setRow(t, f, s, 1, "Operasjon", "Kjennemerke", "Leietaker", "Fra dato", "Til dato", "Referanse", "Notat")
		setRow(t, f, s, 2, "add", "AB12345", 12345678901, time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), 45337.75, " r1 ", true)
		must(t, f.SetCellStyle(s, "D2", "D2", dateStyle(t, f, "")))
		must(t, f.SetCellStyle(s, "E2", "E2", dateStyle(t, f, "[$-414]dd.mm.yyyy;@")))
		// Row 3 blank; row 4 has a number where text belongs and a text date.
		setRow(t, f, s, 4, "remove", 1234567, "", "2024-01-15", 1.5)
		must(t, f.SetCellStyle(s, "E4", "E4", dateStyle(t, f, "0.00")))
		// Row 6 is ragged: a value past the header's last column.
		setRow(t, f, s, 6, "add", "CD67890")
		must(t, f.SetCellValue(s, "J6", "stray"))
		// A formula with a cached string result.
		must(t, f.SetCellFormula(s, "F7", `"x"&"y"`))
		must(t, f.SetCellValue(s, "A7", "add"))
	})
	info, rows, err := readAll(t, p, DefaultLimits())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if info.Format != lessee.FormatXLSX || info.Columns[lessee.ColEndDate] != "Til dato" || info.HeaderLine != 1 {
		t.Errorf("info = %+v", info)
	}
	if strings.Join(info.IgnoredColumns, "|") != "Notat" {
		t.Errorf("IgnoredColumns = %q", info.IgnoredColumns)
	}
	type cell struct {
		col  lessee.Column
		v    string
		kind lessee.CellKind
	}
	want := []struct {
		line   int
		cells  []cell
		ragged bool
	}{
		{line: 2, cells: []cell{
			{lessee.ColOperation, "add", lessee.CellText},
			{lessee.ColRegistrationNumber, "AB12345", lessee.CellText},
			{lessee.ColLesseeID, "12345678901", lessee.CellNumber},
			{lessee.ColStartDate, "2024-01-15", lessee.CellDate},
			{lessee.ColEndDate, "2024-02-15", lessee.CellDate}, // 45337.75: the time of day is dropped
			{lessee.ColReference, "r1", lessee.CellText},
		}},
		{line: 4, cells: []cell{
			{lessee.ColRegistrationNumber, "1234567", lessee.CellNumber},
			{lessee.ColLesseeID, "", lessee.CellText},
			{lessee.ColStartDate, "2024-01-15", lessee.CellText},
			{lessee.ColEndDate, "1.5", lessee.CellNumber}, // a number format, not a date
		}},
		{line: 6, ragged: true, cells: []cell{{lessee.ColRegistrationNumber, "CD67890", lessee.CellText}}},
		{line: 7, cells: []cell{{lessee.ColReference, "", lessee.CellText}}},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		got := rows[i]
		if got.Index != i || got.Line != w.line {
			t.Errorf("row %d: Index %d Line %d, want Line %d", i, got.Index, got.Line, w.line)
		}
		for _, c := range w.cells {
			if g := got.Cells[c.col]; g.Value != c.v || g.Kind != c.kind {
				t.Errorf("row %d: %s = %q kind %d, want %q kind %d", i, c.col, g.Value, g.Kind, c.v, c.kind)
			}
		}
		if ragged := got.Problem != nil && got.Problem.Code == lessee.CodeRaggedRow; ragged != w.ragged {
			t.Errorf("row %d: problem %+v, want ragged %v", i, got.Problem, w.ragged)
		}
	}
	if msg := rows[2].Problem.Message; msg != "row has 10 fields, header has 7" {
		t.Errorf("ragged message %q", msg)
	}
}

func TestXLSXDate1904(t *testing.T) {
	t.Parallel()
	p := makeWorkbook(t, func(f *excelize.File) {
		yes := true
		must(t, f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &yes}))
		setRow(t, f, "Sheet1", 1, "operation", "vin", "start_date")
		setRow(t, f, "Sheet1", 2, "add", "V", 43844) // 2024-01-15 counted from 1904
		must(t, f.SetCellStyle("Sheet1", "C2", "C2", dateStyle(t, f, "")))
	})
	_, rows, err := readAll(t, p, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if c := rows[0].Cells[lessee.ColStartDate]; c.Value != "2024-01-15" || c.Kind != lessee.CellDate {
		t.Errorf("start_date = %+v, want 2024-01-15 date", c)
	}
}

func TestXLSXSpilledToDisk(t *testing.T) {
	t.Parallel()
	// A worksheet and shared strings larger than MaxUnzipXMLBytes go to
	// temporary files inside excelize; the types reader works from the ZIP
	// either way.
	p := makeWorkbook(t, func(f *excelize.File) {
		setRow(t, f, "Sheet1", 1, "operation", "registration_number", "lessee_id", "reference")
		for i := 2; i <= 400; i++ {
			setRow(t, f, "Sheet1", i, "add", "AB"+strings.Repeat("1", i%7+1), i*1000, "ref-"+strings.Repeat("x", i%13))
		}
	})
	limits := DefaultLimits()
	limits.MaxUnzipXMLBytes = 1 << 10
	info, rows, err := readAll(t, p, limits)
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != 399 || rows[398].Line != 400 {
		t.Fatalf("rows = %d, last line %d", info.Rows, rows[len(rows)-1].Line)
	}
	if c := rows[0].Cells[lessee.ColLesseeID]; c.Value != "2000" || c.Kind != lessee.CellNumber {
		t.Errorf("lessee_id = %+v, want number 2000", c)
	}
	if c := rows[0].Cells[lessee.ColReference]; c.Value != "ref-xx" || c.Kind != lessee.CellText {
		t.Errorf("reference = %+v", c)
	}
}

func TestXLSXRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("ErrExpandsTooLarge", func(t *testing.T) {
		t.Parallel()
		// 4 MiB of one letter compresses to a few KiB: a small zip bomb.
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 1, "operation", "vin")
			for i := 2; i < 6; i++ {
				setRow(t, f, "Sheet1", i, "add", strings.Repeat("A", 30000))
			}
			for i := 6; i < 4000; i++ {
				setRow(t, f, "Sheet1", i, "add", i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i)
			}
		})
		if st, err := os.Stat(p); err != nil || st.Size() > 1<<20 {
			t.Fatalf("fixture is %d bytes (%v); want it small", st.Size(), err)
		}
		_, err := Scan(ctx, p, Limits{MaxUnzipBytes: 1 << 20, MaxUnzipXMLBytes: 1 << 19})
		wantRefusal(t, err, lessee.CodeExpandsTooLarge, 0)
	})
	t.Run("ErrEncrypted", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 1, "operation", "vin")
		}, excelize.Options{Password: "hemmelig"})
		_, err := Scan(ctx, p, DefaultLimits())
		wantRefusal(t, err, lessee.CodeEncryptedWorkbook, 0)
	})
	t.Run("ErrNotAWorkbook", func(t *testing.T) {
		t.Parallel()
		p := filepath.Join(t.TempDir(), "x.xlsx")
		out, err := os.Create(p)
		must(t, err)
		zw := zip.NewWriter(out)
		w, err := zw.Create("hello.txt")
		must(t, err)
		_, err = w.Write([]byte("operation;vin\nadd;V\n"))
		must(t, err)
		must(t, zw.Close())
		must(t, out.Close())
		_, err = Scan(ctx, p, DefaultLimits())
		wantRefusal(t, err, lessee.CodeUnsupportedFormat, 0)
	})
	t.Run("ErrTruncatedZip", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) { setRow(t, f, "Sheet1", 1, "operation", "vin") })
		b, err := os.ReadFile(p)
		must(t, err)
		must(t, os.WriteFile(p, b[:len(b)/2], 0o600))
		_, err = Scan(ctx, p, DefaultLimits())
		wantRefusal(t, err, lessee.CodeUnsupportedFormat, 0)
	})
	t.Run("ErrMissingColumn", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 2, "operation", "lessee_id") // header on row 2
			setRow(t, f, "Sheet1", 3, "add", "x")
		})
		_, err := Scan(ctx, p, DefaultLimits())
		wantRefusal(t, err, lessee.CodeMissingColumn, 2)
	})
	t.Run("ErrEmptySheet", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {})
		_, err := Scan(ctx, p, DefaultLimits())
		wantRefusal(t, err, lessee.CodeMissingHeader, 0)
	})
	t.Run("ErrCellTooLarge", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 1, "operation", "vin", "reference")
			setRow(t, f, "Sheet1", 2, "add", "V", strings.Repeat("r", 100))
		})
		_, err := Scan(ctx, p, Limits{MaxCellBytes: 50})
		r := wantRefusal(t, err, lessee.CodeCellTooLarge, 2)
		if !strings.Contains(r.Message, `"reference"`) {
			t.Errorf("message %q does not name the column", r.Message)
		}
	})
	t.Run("ErrTooManyRows", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 1, "operation", "vin")
			setRow(t, f, "Sheet1", 2, "add", "V")
			setRow(t, f, "Sheet1", 5, "add", "V")
		})
		_, err := Scan(ctx, p, Limits{MaxRows: 1})
		wantRefusal(t, err, lessee.CodeTooManyRows, 5)
	})
	t.Run("ErrTooManyColumns", func(t *testing.T) {
		t.Parallel()
		p := makeWorkbook(t, func(f *excelize.File) {
			setRow(t, f, "Sheet1", 1, "operation", "vin", "a", "b", "c")
		})
		_, err := Scan(ctx, p, Limits{MaxColumns: 4})
		wantRefusal(t, err, lessee.CodeTooManyColumns, 1)
	})
}

func TestSerialDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw    string
		d1904  bool
		want   string
		wantOK bool
	}{
		{"1", false, "1900-01-01", true},
		{"59", false, "1900-02-28", true},
		{"60", false, "", false}, // Excel's 29 February 1900 never was
		{"61", false, "1900-03-01", true},
		{"45306", false, "2024-01-15", true},
		{"45306.5", false, "2024-01-15", true},
		{"45306.999999", false, "2024-01-16", true}, // rounds to midnight, as Excel shows it
		{"0", true, "1904-01-01", true},
		{"43844", true, "2024-01-15", true},
		{"0", false, "", false},
		{"-1", false, "", false},
		{"3000000", false, "", false},
		{"abc", false, "", false},
		{"NaN", false, "", false},
	}
	for _, tt := range tests {
		got, ok := serialDate(tt.raw, tt.d1904)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("serialDate(%q, %v) = %q %v, want %q %v", tt.raw, tt.d1904, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestDateFormatCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{"dd.mm.yyyy", true},
		{"[$-414]d. mmmm yyyy;@", true},
		{"yyyy-mm-dd hh:mm", true},
		{"mmm", true},
		{"mmm-yy", true},
		{"h:mm:ss", false},
		{"[h]:mm", false},
		{"[mm]:ss", false},
		{"[Red]dd/mm", true},
		{"mm:ss", false},
		{"General", false},
		{"0.00", false},
		{`#,##0 "kr"`, false},
		{`0 "dager"`, false}, // the d is inside a literal
		{`\d0`, false},
		{"@", false},
		{"0;[Red]-0", false},
	}
	for _, tt := range tests {
		if got := dateFormatCode(tt.code); got != tt.want {
			t.Errorf("dateFormatCode(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// writeBomb writes a workbook whose one worksheet inflates to size bytes,
// almost all of it spaces. With lie set, the ZIP headers declare the sheet
// 1 KiB, the way a bomb hides from a check of the central directory.
func writeBomb(t *testing.T, size int64, lie bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bomb.xlsx")
	out, err := os.Create(p)
	must(t, err)
	zw := zip.NewWriter(out)
	for name, body := range map[string]string{
		"[Content_Types].xml":        `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>`,
		"_rels/.rels":                `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml":            `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
	} {
		w, err := zw.Create(name)
		must(t, err)
		_, err = io.WriteString(w, body)
		must(t, err)
	}
	fh := &zip.FileHeader{Name: "xl/worksheets/sheet1.xml", Method: zip.Deflate}
	w, err := zw.CreateHeader(fh)
	must(t, err)
	head := `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>operation</t></is></c><c r="B1" t="inlineStr"><is><t>vin</t></is></c></row>`
	_, err = io.WriteString(w, head)
	must(t, err)
	pad := bytes.Repeat([]byte(" "), 1<<20)
	for n := int64(len(head)); n < size; n += int64(len(pad)) {
		_, err = w.Write(pad)
		must(t, err)
	}
	_, err = io.WriteString(w, `</sheetData></worksheet>`)
	must(t, err)
	must(t, zw.Close())
	must(t, out.Close())
	if lie {
		b, err := os.ReadFile(p)
		must(t, err)
		name := []byte(fh.Name)
		for _, sig := range []struct {
			magic          []byte
			sizeAt, nameAt int
		}{{[]byte("PK\x03\x04"), 22, 30}, {[]byte("PK\x01\x02"), 24, 46}} {
			for i := 0; ; i += 4 {
				j := bytes.Index(b[i:], sig.magic)
				if j < 0 {
					break
				}
				i += j
				if bytes.HasPrefix(b[i+sig.nameAt:], name) {
					binary.LittleEndian.PutUint32(b[i+sig.sizeAt:], 1024)
				}
			}
		}
		must(t, os.WriteFile(p, b, 0o600))
	}
	return p
}

// peakHeap runs fn while sampling the heap in use and returns the peak
// above the heap in use before fn.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-sampled
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// TestMemoryBoundedRefusals shows that refusing a zip bomb or a huge file
// keeps the heap small: the bound is 16 MiB above the heap before Scan, for
// inputs that would take 36 MiB to 80 MiB if read whole.
func TestMemoryBoundedRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("writes files of up to 64 MiB")
	}
	const bound = 16 << 20
	limits := Limits{MaxBytes: 32 << 20, MaxUnzipBytes: 64 << 20, MaxUnzipXMLBytes: 8 << 20}
	tests := []struct {
		name string
		path func(t *testing.T) string
		code lessee.Code
	}{
		{"ErrZipBomb", func(t *testing.T) string { return writeBomb(t, 80<<20, false) }, lessee.CodeExpandsTooLarge},
		{"ErrZipBombLyingSizes", func(t *testing.T) string { return writeBomb(t, 80<<20, true) }, lessee.CodeUnsupportedFormat},
		{"ErrFileTooLarge", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "big.csv")
			must(t, os.WriteFile(p, bytes.Repeat([]byte("add;EL10001\n"), 3<<20), 0o600))
			return p
		}, lessee.CodeFileTooLarge},
		{"ErrUnclosedQuoteHugeCell", func(t *testing.T) string {
			// Under the byte limit, but one quote left open makes the rest
			// of the file a single cell.
			p := filepath.Join(t.TempDir(), "quote.csv")
			b := append([]byte("operation;vin;reference\nadd;V;\""), bytes.Repeat([]byte("add;EL10001;x\n"), 2<<20)...)
			must(t, os.WriteFile(p, b, 0o600))
			return p
		}, lessee.CodeCellTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.path(t)
			var err error
			peak := peakHeap(func() { _, err = Scan(context.Background(), p, limits) })
			wantRefusal(t, err, tt.code, 0)
			t.Logf("peak heap above base: %d KiB", peak>>10)
			if peak > bound {
				t.Errorf("heap grew by %d MiB refusing the file; bound %d MiB", peak>>20, bound>>20)
			}
		})
	}
}
