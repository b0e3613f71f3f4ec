package corpus

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"github.com/fleetreg/lessee/examples"
)

var generate = flag.Bool("generate", false, "rewrite the crafted corpus inputs (LibreOffice files come from testdata/corpus/libreoffice.sh)")

// The logical content most dialect files share: every row outcome a
// dialect can disturb, with Norwegian letters, delimiters and quotes in the
// reference, which the receipt echoes.
var (
	norwegianHeader = []string{"Operasjon", "Kjennemerke", "Understellsnummer", "Leietaker", "Navn", "Fra dato", "Til dato", "På vegne av", "Referanse"}
	englishHeader   = []string{"operation", "registration_number", "vin", "lessee_id", "lessee_name", "start_date", "end_date", "on_behalf_of", "reference"}
	baseRows        = [][]string{
		{"add", "EL10001", "", "12128822249", "Kari Nordmann", "2026-01-01", "", "", "Bærum-1"},
		{"add", "EL10005", "", "912345688", "Kontorbygg AS", "01.02.2026", "", "", "Ålesund;2,b"},
		{"remove", "EL10002", "", "15038512363", "", "", "2026-02-01", "", `Tromsø "nord"`},
		{"add", "EL10007", "", "17051743228", "Per Ås", "2026-01-01", "", "", "Ærlig-4"},
		{"add", "ZZ99999", "", "17051743229", "", "2026-01-01", "", "", "Øst-5"},
		{"OPPRETTE", "", "WVWZZZ1KZAW000008", "02079123660", "Åse Øvrebø", "15.01.2026", "", "", "vin-6"},
	}
)

// csvText renders rows the way spreadsheets write CSV: a field is quoted
// only when it holds the delimiter, a quote, a line break or edge spaces.
func csvText(header []string, rows [][]string, delim, eol string) string {
	var b strings.Builder
	line := func(fields []string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteString(delim)
			}
			if strings.ContainsAny(f, delim+"\"\r\n") || strings.TrimSpace(f) != f {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			b.WriteString(f)
		}
		b.WriteString(eol)
	}
	if header != nil {
		line(header)
	}
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func enc1252(t *testing.T, s string) []byte {
	t.Helper()
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode windows-1252: %v", err)
	}
	return b
}

func encUTF16(s string, bigEndian bool) []byte {
	var b bytes.Buffer
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		order = binary.BigEndian
	}
	for _, u := range append([]uint16{0xFEFF}, utf16.Encode([]rune(s))...) {
		_ = binary.Write(&b, order, u)
	}
	return b.Bytes()
}

const bom = "\uFEFF"

// columns picks columns by index from every row.
func columns(rows [][]string, idx ...int) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		for _, j := range idx {
			out[i] = append(out[i], r[j])
		}
	}
	return out
}

func repeatRows(n int, row func(i int) []string) [][]string {
	rows := make([][]string, n)
	for i := range rows {
		rows[i] = row(i)
	}
	return rows
}

// TestGenerate writes the crafted inputs of the corpus. It runs only with
// -generate: the files are fixtures, committed as bytes, and a change to
// this generator must be a deliberate rewrite.
func TestGenerate(t *testing.T) {
	if !*generate {
		t.Skip("run with -generate to rewrite the crafted corpus inputs")
	}
	nordlys := filepath.Join(corpusDir, "inbox", "912345602")
	write := func(dir, name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(name, s string) { write(nordlys, name, []byte(s)) }

	// Encodings, delimiters and line ends, as Excel and fleet systems save.
	text("en-utf8-comma-lf.csv", csvText(englishHeader, baseRows, ",", "\n"))
	text("no-utf8bom-semicolon-crlf.csv", bom+csvText(norwegianHeader, baseRows, ";", "\r\n"))
	write(nordlys, "no-windows1252-semicolon-crlf.csv", enc1252(t, csvText(norwegianHeader, baseRows, ";", "\r\n")))
	write(nordlys, "no-utf16le-tab-crlf.csv", encUTF16(csvText(norwegianHeader, baseRows, "\t", "\r\n"), false))
	write(nordlys, "en-utf16be-comma-lf.csv", encUTF16(csvText(englishHeader, baseRows, ",", "\n"), true))
	write(nordlys, "no-windows1252-cr.csv", enc1252(t, csvText(norwegianHeader, baseRows, ";", "\r")))
	text("en-tab-lf.csv", csvText(englishHeader, baseRows, "\t", "\n"))
	{
		var b strings.Builder
		eols := []string{"\r\n", "\n", "\r"}
		for i, l := range strings.Split(strings.TrimSuffix(csvText(englishHeader, baseRows, ",", "\n"), "\n"), "\n") {
			b.WriteString(l + eols[i%3])
		}
		text("mixed-line-ends.csv", b.String())
	}

	// Quoting: delimiters, doubled quotes and line breaks inside cells. The
	// receipt's row numbers must be the spreadsheet's, not the text lines.
	text("quoted-multiline.csv", csvText(englishHeader, [][]string{
		{"add", "EL10001", "", "12128822249", "Kari\nNordmann", "2026-01-01", "", "", "linje 1\nlinje 2\nlinje 3"},
		{"add", "EL10005", "", "912345688", "", "2026-02-01", "", "", `sier "hei", og ";"`},
		{"remove", "EL10002", "", "15038512363", "", "", "2026-02-01", "", "crlf\r\ninne"},
		{"add", "ZZ99999", "", "17051743229", "", "2026-01-01", "", "", "etter"},
	}, ",", "\r\n"))
	text("quote-every-field.csv", strings.ReplaceAll(`"operation";"registration_number";"lessee_id";"start_date";"reference"
"add";"EL10001";"12128822249";"2026-01-01";"R ""1"""
"add";"EL10005";"912345688";"";"R;2"
`, "\n", "\r\n"))

	// What Norwegian Excel saves as CSV when identity numbers were typed
	// into General cells: a leading zero gone, long numbers in scientific
	// notation with a decimal comma.
	write(nordlys, "excel-general-cells-semicolon.csv", enc1252(t, csvText(
		[]string{"Operasjon", "Kjennemerke", "Leietaker", "Fra dato", "Referanse"},
		[][]string{
			{"add", "EL10008", "2079123660", "15.01.2026", "null borte"},
			{"add", "EL10001", "1,21288E+10", "01.01.2026", "vitenskapelig"},
			{"add", "EL10005", "912345688", "01.02.2026", "orgnr"},
			{"add", "EL10007", "17051743229", "46023", "datoserie"},
		}, ";", "\r\n")))

	// Blank lines, padding and ragged rows.
	text("blank-lines.csv", "operation;registration_number;lessee_id;start_date;reference\r\n"+
		"\r\n"+
		"add;EL10001;12128822249;2026-01-01;R-1\r\n"+
		";;;;\r\n"+
		"   \r\n"+
		"add;EL10005;912345688;2026-02-01;R-2\r\n"+
		"\r\n\r\n")
	text("header-after-blank-lines.csv", "\n;;;\n\nOperasjon;Kjennemerke;Leietaker;Fra dato\nadd;EL10001;12128822249;2026-01-01\n")
	text("trailing-empty-columns.csv", csvText(append(columnsOf(norwegianHeader, 0, 1, 3, 5, 8), "", "", ""),
		padRows(columns(baseRows, 0, 1, 3, 5, 8), 3), ";", "\r\n"))
	text("ragged-rows.csv", "operation,registration_number,lessee_id,start_date,reference\n"+
		"add,EL10001,12128822249,2026-01-01,R-1\n"+
		"add,EL10005,912345688,2026-02-01,R-2,extra,more\n"+
		"add,EL10007,17051743229\n"+
		"add,EL10008,02079123660,2026-01-01,R-4,,,\n")

	// Headers: Norwegian and English aliases in any order and case, with
	// accents and stray spaces; duplicate, missing and unknown columns.
	text("headers-case-accents.csv", csvText(
		[]string{" Référence ", "OPERASJON", "kjenneMERKE", "LeasingtakerID", "Fra-Dato", "TIL_DATO", "På Vegne Av"},
		columns(baseRows, 8, 0, 1, 3, 5, 6, 7), ";", "\r\n"))
	text("headers-any-order.csv", csvText(
		[]string{"start_date", "reference", "lessee_id", "vin", "operation", "end_date", "registration_number"},
		columns(baseRows, 5, 8, 3, 2, 0, 6, 1), ",", "\n"))
	text("headers-english-aliases.csv", csvText(
		[]string{"Action", "Registration", "Lessee", "Name", "From date", "To date", "Fleet owner", "External ID"},
		columns(baseRows, 0, 1, 3, 4, 5, 6, 7, 8), ",", "\r\n"))
	text("headers-norwegian-aliases.csv", csvText(
		[]string{"Handling", "Regnr", "Chassisnummer", "Leasingtaker", "Etternavn", "Startdato", "Sluttdato", "Paa_vegne_av", "Ref"},
		baseRows, ";", "\r\n"))
	text("duplicate-column.csv", "Operasjon;Regnr;Kjennemerke;Leietaker;Fra dato\r\nadd;EL10001;EL10001;12128822249;2026-01-01\r\n")
	text("duplicate-column-same-name.csv", "operation,vin,reference,Reference\nadd,WVWZZZ1KZAW000008,a,b\n")
	text("missing-operation-column.csv", "Kjennemerke;Leietaker;Fra dato\r\nEL10001;12128822249;2026-01-01\r\n")
	text("missing-vehicle-column.csv", "operation,lessee_id,start_date\nadd,12128822249,2026-01-01\n")
	text("unknown-columns.csv", csvText(
		[]string{"Avdeling", "operation", "registration_number", "Kommentar", "lessee_id", "start_date", "Kunde 12128822249", "reference"},
		[][]string{
			{"Salg", "add", "EL10001", "ny bil", "12128822249", "2026-01-01", "x", "R-1"},
			{"Drift", "add", "EL10005", "", "912345688", "2026-02-01", "", "R-2"},
		}, ",", "\n"))
	text("no-header.csv", csvText(nil, baseRows[:2], ";", "\r\n"))
	text("empty.csv", "")
	text("blank-only.csv", "\r\n;;;\r\n   \r\n")
	text("header-only.csv", csvText(englishHeader, nil, ",", "\r\n"))

	// Limits; the corpus test runs with corpusLimits.
	big := repeatRows(1200, func(i int) []string {
		return []string{"add", "EL10001", "", "12128822249", "Kari Nordmann", "2026-01-01", "", "", fmt.Sprintf("R-%04d", i)}
	})
	text("too-large.csv", csvText(englishHeader, big, ",", "\n"))
	text("too-many-rows.csv", csvText(englishHeader[:4], columns(big[:corpusLimits().MaxRows+1], 0, 1, 2, 3), ",", "\n"))
	text("cell-too-large.csv", csvText(englishHeader, [][]string{
		baseRows[0], {"add", "EL10005", "", "912345688", "", "2026-02-01", "", "", strings.Repeat("lang referanse ", 40)},
	}, ",", "\n"))
	text("cell-too-large-unclosed-quote.csv", "operation,registration_number,reference\nadd,EL10001,\"never closed\n"+
		strings.Repeat("add,EL10005,R\n", 100))
	manyCols := []string{"operation", "vin"}
	for i := len(manyCols); i <= corpusLimits().MaxColumns; i++ {
		manyCols = append(manyCols, fmt.Sprintf("extra%d", i))
	}
	text("too-many-columns.csv", csvText(manyCols, nil, ";", "\r\n"))
	text("too-many-columns-in-row.csv", "operation;vin\r\nadd;WVWZZZ1KZAW000008"+strings.Repeat(";x", corpusLimits().MaxColumns)+"\r\n")

	// Bytes that are not text in any accepted encoding, and broken quoting.
	write(nordlys, "undecodable.csv", append([]byte("operation;vin;reference\r\nadd;WVWZZZ1KZAW000008;"), 0x81, 0x8D, '\r', '\n'))
	write(nordlys, "mixed-encoding.csv", append([]byte("operation;vin;reference\r\nadd;WVWZZZ1KZAW000008;Bærum\r\nadd;WVWZZZ1KZAW000001;Troms"), 0xF8, '\r', '\n'))
	write(nordlys, "utf16-odd-length.csv", encUTF16("operation,vin\r\nadd,X\r\n", false)[:27])
	text("unclosed-quote.csv", "operation,registration_number,reference\nadd,EL10001,\"R-1\nadd,EL10005,R-2\n")
	text("bare-quote.csv", "operation,registration_number,lessee_name,start_date\nadd,EL10001,Kari \"K\" Nordmann,2026-01-01\n")

	// Not tables at all, whatever the name says.
	var pngBuf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		img.Set(x, x, color.RGBA{200, 16, 46, 255})
	}
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	write(nordlys, "screenshot-png.csv", pngBuf.Bytes())

	// Workbooks written by excelize, which writes what Excel does: shared
	// strings, styles, date cells as serials with a date format.
	write(nordlys, "excelize-shared-strings.xlsx", workbook(t, excelize.Options{}, func(f *excelize.File) {
		rows(t, f, "Sheet1", append([][]string{norwegianHeader}, baseRows...))
	}))
	write(nordlys, "excelize-dates-1900.xlsx", workbook(t, excelize.Options{}, datesSheet(t, false)))
	write(nordlys, "excelize-dates-1904.xlsx", workbook(t, excelize.Options{}, datesSheet(t, true)))
	write(nordlys, "excelize-numeric-ids.xlsx", workbook(t, excelize.Options{}, func(f *excelize.File) {
		sci, err := f.NewStyle(&excelize.Style{NumFmt: 11}) // 0.00E+00, as Excel shows long numbers
		must(t, err)
		must(t, f.SetSheetRow("Sheet1", "A1", &[]any{"operation", "registration_number", "lessee_id", "start_date", "on_behalf_of", "reference"}))
		must(t, f.SetSheetRow("Sheet1", "A2", &[]any{"add", "EL10008", 2079123660, "2026-01-01", "", "leading zero lost"}))
		must(t, f.SetSheetRow("Sheet1", "A3", &[]any{"add", "EL10001", 12128822249, "2026-01-01", "", "scientific"}))
		must(t, f.SetCellStyle("Sheet1", "C3", "C3", sci))
		must(t, f.SetSheetRow("Sheet1", "A4", &[]any{"add", "EL10005", 912345688, "2026-01-01", "", "orgnr as number"}))
		must(t, f.SetSheetRow("Sheet1", "A5", &[]any{"add", "EL10007", "17051743229", "2026-01-01", 912345602, "on_behalf_of as number"}))
		must(t, f.SetSheetRow("Sheet1", "A6", &[]any{"add", 10011, "17051743229", "2026-01-01", "", "registration as number"}))
		must(t, f.SetSheetRow("Sheet1", "A7", &[]any{"add", "EL10011", 1.2128822249e10, "2026-01-01", "", "float"}))
	}))
	write(nordlys, "lessees-sheet-not-first.xlsx", workbook(t, excelize.Options{}, func(f *excelize.File) {
		must(t, f.SetSheetName("Sheet1", "Instruksjoner"))
		rows(t, f, "Instruksjoner", [][]string{{"Fyll ut arket Lessees."}, {"operation", "vin"}, {"add", "WVWZZZ1KZAW000001"}})
		_, err := f.NewSheet("LESSEES")
		must(t, err)
		rows(t, f, "LESSEES", append([][]string{englishHeader}, baseRows[:3]...))
		_, err = f.NewSheet("Notater")
		must(t, err)
		rows(t, f, "Notater", [][]string{{"ingenting"}})
	}))
	write(nordlys, "first-sheet-without-lessees.xlsx", workbook(t, excelize.Options{}, func(f *excelize.File) {
		must(t, f.SetSheetName("Sheet1", "Endringer mars"))
		rows(t, f, "Endringer mars", append([][]string{norwegianHeader}, baseRows[:2]...))
		_, err := f.NewSheet("Ark2")
		must(t, err)
		rows(t, f, "Ark2", [][]string{{"operation", "vin"}, {"add", "WVWZZZ1KZAW000001"}})
	}))
	write(nordlys, "excelize-blank-rows-trailing-cells.xlsx", workbook(t, excelize.Options{}, func(f *excelize.File) {
		must(t, f.SetSheetRow("Sheet1", "B3", &[]any{"Operasjon", "Kjennemerke", "Leietaker", "Fra dato", "", ""}))
		must(t, f.SetSheetRow("Sheet1", "B4", &[]any{"add", "EL10001", "12128822249", "2026-01-01"}))
		must(t, f.SetSheetRow("Sheet1", "B7", &[]any{"add", "EL10005", "912345688", "2026-02-01", "", " "}))
		must(t, f.SetSheetRow("Sheet1", "B8", &[]any{"add", "EL10007", "17051743229", "2026-01-01", "ragged"}))
		must(t, f.SetCellValue("Sheet1", "H20", ""))
	}))
	write(nordlys, "encrypted.xlsx", workbook(t, excelize.Options{Password: "Sommer2026!"}, func(f *excelize.File) {
		rows(t, f, "Sheet1", append([][]string{englishHeader}, baseRows[:1]...))
	}))
	xlsxBytes := workbook(t, excelize.Options{}, func(f *excelize.File) {
		rows(t, f, "Sheet1", append([][]string{englishHeader}, baseRows[:2]...))
	})
	write(nordlys, "xlsx-named-csv.csv", xlsxBytes)
	write(nordlys, "truncated.xlsx", xlsxBytes[:len(xlsxBytes)*2/3])

	// Hand-made workbooks: inline strings and no shared-strings part, as
	// Google Sheets and many export libraries write; a ZIP that is no
	// workbook; and two zip bombs.
	write(nordlys, "inline-strings.xlsx", handWorkbook(t, inlineSheet, false))
	write(nordlys, "zip-not-a-workbook.xlsx", zipOf(t, map[string]string{"data/lessees.csv": "operation;vin\nadd;WVWZZZ1KZAW000001\n"}))
	write(nordlys, "zip-bomb.xlsx", handWorkbook(t, bombSheet(corpusLimits().MaxUnzipBytes*2), false))
	write(nordlys, "zip-bomb-lying-sizes.xlsx", handWorkbook(t, bombSheet(corpusLimits().MaxUnzipBytes*2), true))

	// The example files, as a company would upload them.
	for _, c := range []struct{ src, dir, name string }{
		{"changes/all-outcomes.csv", nordlys, "all-outcomes.csv"},
		{"changes/third-party.csv", filepath.Join(corpusDir, "inbox", "912345629"), "third-party.csv"},
		{"changes/all-outcomes.csv", filepath.Join(corpusDir, "inbox", "912345653"), "terms-not-accepted.csv"},
	} {
		b, err := fs.ReadFile(examples.FS(), c.src)
		must(t, err)
		write(c.dir, c.name, b)
	}
}

func columnsOf(s []string, idx ...int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, s[i])
	}
	return out
}

func padRows(rows [][]string, n int) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = append(append([]string(nil), r...), make([]string, n)...)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func workbook(t *testing.T, opts excelize.Options, build func(*excelize.File)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	build(f)
	var b bytes.Buffer
	if _, err := f.WriteTo(&b, opts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rows(t *testing.T, f *excelize.File, sheet string, rows [][]string) {
	t.Helper()
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		must(t, err)
		must(t, f.SetSheetRow(sheet, cell, &vals))
	}
}

// datesSheet writes start dates in every way a workbook holds them: date
// cells with built-in and custom formats, a date-time, a bare serial with
// no date format, and text.
func datesSheet(t *testing.T, date1904 bool) func(*excelize.File) {
	return func(f *excelize.File) {
		if date1904 {
			must(t, f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &date1904}))
		}
		iso, err := f.NewStyle(&excelize.Style{NumFmt: 14})
		must(t, err)
		custom := "dd.mm.yyyy"
		norsk, err := f.NewStyle(&excelize.Style{CustomNumFmt: &custom})
		must(t, err)
		stamp := "dd.mm.yyyy hh:mm"
		dt, err := f.NewStyle(&excelize.Style{CustomNumFmt: &stamp})
		must(t, err)
		must(t, f.SetSheetRow("Sheet1", "A1", &[]any{"operation", "registration_number", "lessee_id", "start_date", "end_date", "reference"}))
		day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
		set := func(row int, reg string, start any, style int, end any, ref string) {
			cell := fmt.Sprintf("A%d", row)
			must(t, f.SetSheetRow("Sheet1", cell, &[]any{"add", reg, "17051743229", start, end, ref}))
			if style != 0 {
				must(t, f.SetCellStyle("Sheet1", fmt.Sprintf("D%d", row), fmt.Sprintf("E%d", row), style))
			}
		}
		set(2, "EL10001", day(2026, 1, 1), iso, nil, "date cell, built-in format 14")
		set(3, "EL10005", day(2026, 2, 1), norsk, day(2026, 12, 31), "date cell, dd.mm.yyyy")
		set(4, "EL10007", time.Date(2026, 1, 15, 23, 59, 59, 0, time.UTC), dt, nil, "date-time cell")
		set(5, "EL10008", 46023, 0, nil, "serial without date format")
		set(6, "EL10011", "01.02.2026", 0, "31.12.2026", "text dd.mm.yyyy")
		set(7, "EL10001", day(1900, 1, 1), iso, nil, "1900-01-01")
		set(8, "EL10005", day(2026, 3, 1), iso, day(2026, 2, 1), "end before start")
	}
}

// inlineSheet is a worksheet with inline strings only and a date cell styled
// by a custom format, as Google Sheets-like exporters write it.
const inlineSheet = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>Operasjon</t></is></c><c r="B1" t="inlineStr"><is><t>Kjennemerke</t></is></c><c r="C1" t="inlineStr"><is><t>Leietaker</t></is></c><c r="D1" t="inlineStr"><is><t>Fra dato</t></is></c><c r="E1" t="inlineStr"><is><r><t>Refer</t></r><r><rPr><b/></rPr><t>anse</t></r></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>add</t></is></c><c r="B2" t="inlineStr"><is><t>EL10001</t></is></c><c r="C2" t="inlineStr"><is><t>12128822249</t></is></c><c r="D2" s="1"><v>46023</v></c><c r="E2" t="inlineStr"><is><t xml:space="preserve"> Bærum &amp; Asker </t></is></c></row>
<row r="4"><c r="A4" t="inlineStr"><is><t>add</t></is></c><c r="B4" t="inlineStr"><is><t>EL10005</t></is></c><c r="C4" t="str"><v>912345688</v></c><c r="D4" t="inlineStr"><is><t>2026-02-01</t></is></c><c r="E4" t="inlineStr"><is><t>=1+1</t></is></c></row>
<row r="5"><c r="A5" t="inlineStr"><is><t>add</t></is></c><c r="B5" t="inlineStr"><is><t>EL10007</t></is></c><c r="C5"><v>2079123660</v></c><c r="D5" s="1"><v>46023</v></c><c r="E5" t="b"><v>1</v></c></row>
</sheetData></worksheet>`

// bombSheet is a worksheet of n bytes, almost all of it one repeated
// padding row, which deflate squeezes about a thousandfold.
func bombSheet(n int64) string {
	head := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="inlineStr"><is><t>operation</t></is></c><c r="B1" t="inlineStr"><is><t>vin</t></is></c></row>`
	tail := `</sheetData></worksheet>`
	return head + strings.Repeat(" ", int(n)-len(head)-len(tail)) + tail
}

// handWorkbook zips a minimal workbook around one worksheet. With lie set,
// the sheet's ZIP headers declare a tiny uncompressed size, the way a zip
// bomb hides from a check of the central directory.
func handWorkbook(t *testing.T, sheet string, lie bool) []byte {
	t.Helper()
	parts := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>`,
		"_rels/.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Ark 1" sheetId="1" r:id="rId1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`,
		"xl/styles.xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\-mm\-dd"/></numFmts><fonts count="1"><font><sz val="10"/><name val="Arial"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>`,
		"xl/worksheets/sheet1.xml": sheet,
	}
	b := zipOf(t, parts)
	if !lie {
		return b
	}
	// Rewrite the sheet's declared uncompressed size (local header and
	// central directory) to 1 KiB; CRC and compressed data stay true.
	name := []byte("xl/worksheets/sheet1.xml")
	for _, sig := range []struct {
		magic  []byte
		sizeAt int
		nameAt int
	}{{[]byte("PK\x03\x04"), 22, 30}, {[]byte("PK\x01\x02"), 24, 46}} {
		for i := 0; ; {
			j := bytes.Index(b[i:], sig.magic)
			if j < 0 {
				break
			}
			i += j
			if bytes.HasPrefix(b[i+sig.nameAt:], name) {
				binary.LittleEndian.PutUint32(b[i+sig.sizeAt:], 1024)
			}
			i += 4
		}
	}
	return b
}

func zipOf(t *testing.T, parts map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// [Content_Types].xml first, as Office writes it; the rest sorted so the
	// bytes do not depend on map order.
	names := []string{}
	for n := range parts {
		if n != "[Content_Types].xml" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if _, ok := parts["[Content_Types].xml"]; ok {
		names = append([]string{"[Content_Types].xml"}, names...)
	}
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		must(t, err)
		_, err = w.Write([]byte(parts[n]))
		must(t, err)
	}
	must(t, zw.Close())
	return buf.Bytes()
}
