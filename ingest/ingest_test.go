package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// readAll runs both passes over a file, checks they agree, and returns the
// records Open yields.
func readAll(t *testing.T, path string, limits Limits) (Info, []lessee.RawRow, error) {
	t.Helper()
	ctx := context.Background()
	info, err := Scan(ctx, path, limits)
	if err != nil {
		return Info{}, nil, err
	}
	tab, oinfo, err := Open(ctx, path, limits)
	if err != nil {
		t.Fatalf("Open after a successful Scan: %v", err)
	}
	defer func() {
		if err := tab.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if oinfo.Rows != 0 {
		t.Errorf("Open Info.Rows = %d, want 0 (only Scan counts)", oinfo.Rows)
	}
	oinfo.Rows = info.Rows
	if !equalInfo(info, oinfo) {
		t.Errorf("Open Info = %+v, Scan Info = %+v", oinfo, info)
	}
	var rows []lessee.RawRow
	for {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after a successful Scan: %v", err)
		}
		rows = append(rows, row)
	}
	if len(rows) != info.Rows {
		t.Errorf("Open yielded %d records, Scan counted %d", len(rows), info.Rows)
	}
	if _, err := tab.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
	return info, rows, nil
}

func equalInfo(a, b Info) bool {
	return a.Format == b.Format && a.Rows == b.Rows && a.Columns == b.Columns &&
		strings.Join(a.IgnoredColumns, "\x00") == strings.Join(b.IgnoredColumns, "\x00") &&
		a.Delimiter == b.Delimiter && a.Encoding == b.Encoding && a.HeaderLine == b.HeaderLine
}

// wantRefusal asserts err is a *lessee.Error with code and, if line > 0, line.
func wantRefusal(t *testing.T, err error, code lessee.Code, line int) *lessee.Error {
	t.Helper()
	var r *lessee.Error
	if !errors.As(err, &r) {
		t.Fatalf("error = %v, want a *lessee.Error with %s", err, code)
	}
	if r.Code != code {
		t.Fatalf("refusal = %s (%s), want %s", r.Code, r.Message, code)
	}
	if line > 0 && r.Line != line {
		t.Errorf("refusal line = %d, want %d (%s)", r.Line, line, r.Message)
	}
	if r.Message == "" || !strings.Contains(r.Error(), string(code)) {
		t.Errorf("refusal text %q lacks a message or its code", r.Error())
	}
	return r
}

func fixture(name string) string { return filepath.Join("testdata", name) }

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type cellWant map[lessee.Column]string

type rowWant struct {
	line   int
	cells  cellWant
	ragged string // expected Problem message, "" for none
}

func TestCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		delim   rune
		enc     string
		columns cellWant // header names as written
		ignored []string
		rows    []rowWant
	}{
		{
			name: "OK", file: "utf8_semicolon.csv", delim: ';', enc: encUTF8,
			columns: cellWant{lessee.ColOperation: "operation", lessee.ColReference: "reference"},
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColOperation: "add", lessee.ColRegistrationNumber: "AB12345",
					lessee.ColLesseeID: "910000001", lessee.ColLesseeName: "Nordmann AS",
					lessee.ColStartDate: "2024-01-15", lessee.ColReference: "r1"}},
				{line: 3, cells: cellWant{lessee.ColOperation: "remove", lessee.ColEndDate: "2024-02-01", lessee.ColLesseeID: ""}},
			},
		},
		{
			// A quote inside a field that does not start with one is text,
			// as Excel and LibreOffice read it.
			name: "BareQuote", file: "bare_quote.csv", delim: ';', enc: encUTF8,
			columns: cellWant{lessee.ColOperation: "operation", lessee.ColReference: "reference"},
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColRegistrationNumber: "AB12345", lessee.ColReference: `r"1`}},
			},
		},
		{
			name: "UTF8BOMCRLFNorwegianHeader", file: "utf8_bom_crlf.csv", delim: ';', enc: encUTF8,
			columns: cellWant{lessee.ColOperation: "Operasjon", lessee.ColRegistrationNumber: "Kjennemerke",
				lessee.ColLesseeID: "Leietaker", lessee.ColLesseeName: "Etternavn", lessee.ColStartDate: "Fra dato"},
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColLesseeName: "Bjørnstad", lessee.ColStartDate: "15.01.2024", lessee.ColReference: "r1"}},
				{line: 3, cells: cellWant{lessee.ColRegistrationNumber: "EF 22222", lessee.ColLesseeName: "Ærø Å"}},
			},
		},
		{
			name: "Windows1252", file: "windows1252.csv", delim: ';', enc: enc1252,
			columns: cellWant{lessee.ColOnBehalfOf: "På vegne av", lessee.ColLesseeName: "Navn"},
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColLesseeName: "Bjørn Ærlig Åsen"}},
				{line: 3, cells: cellWant{lessee.ColLesseeName: "Søren Æbelø", lessee.ColOnBehalfOf: "910000002"}},
			},
		},
		{
			name: "Tab", file: "tab.csv", delim: '\t', enc: encUTF8,
			rows: []rowWant{{line: 2, cells: cellWant{lessee.ColVIN: "WVWZZZ1JZXW000001", lessee.ColStartDate: "2024-01-15"}}},
		},
		{
			name: "CommaEnglishAliases", file: "comma_lf.csv", delim: ',', enc: encUTF8,
			columns: cellWant{lessee.ColOperation: "action", lessee.ColRegistrationNumber: "registration",
				lessee.ColLesseeID: "lessee", lessee.ColStartDate: "from_date", lessee.ColReference: "ref"},
			rows: []rowWant{{line: 2, cells: cellWant{lessee.ColLesseeID: "910000001", lessee.ColReference: "r1"}}},
		},
		{
			name: "MultilineQuotedFields", file: "multiline.csv", delim: ',', enc: encUTF8,
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColReference: "ref\nwith\nnewlines", lessee.ColLesseeName: "Ola"}},
				// Row 3 is the blank line; quoted line breaks in row 2 do not count.
				{line: 4, cells: cellWant{lessee.ColOperation: "remove", lessee.ColLesseeName: `Kari "K" Nordmann`}},
				{line: 5, cells: cellWant{lessee.ColReference: "a,b"}},
			},
		},
		{
			name: "LoneCR", file: "lone_cr.csv", delim: ';', enc: encUTF8,
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColReference: "r1"}},
				// The break inside quotes is read as the file has it.
				{line: 4, cells: cellWant{lessee.ColReference: "two\rlines"}},
				{line: 5, cells: cellWant{lessee.ColReference: "r3"}},
			},
		},
		{
			name: "RaggedRows", file: "ragged.csv", delim: ';', enc: encUTF8,
			rows: []rowWant{
				{line: 2, cells: cellWant{lessee.ColReference: "r1"}, ragged: "row has 4 fields, header has 3"},
				{line: 3, cells: cellWant{lessee.ColRegistrationNumber: "CD67890", lessee.ColReference: ""}},
				{line: 4, cells: cellWant{lessee.ColReference: "r3"}}, // trailing empty fields are not ragged
			},
		},
		{
			name: "IgnoredColumns", file: "ignored_columns.csv", delim: ';', enc: encUTF8,
			ignored: []string{"Kommentar", "Internt nr"},
			rows:    []rowWant{{line: 2, cells: cellWant{lessee.ColRegistrationNumber: "AB12345"}}},
		},
		{
			name: "UTF16LE", file: "utf16le.csv", delim: '\t', enc: encUTF16LE,
			rows: []rowWant{{line: 2, cells: cellWant{lessee.ColLesseeName: "Bjørn"}}},
		},
		{
			name: "UTF16BE", file: "utf16be.csv", delim: ';', enc: encUTF16BE,
			rows: []rowWant{{line: 2, cells: cellWant{lessee.ColLesseeName: "Åse"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, rows, err := readAll(t, fixture(tt.file), DefaultLimits())
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if info.Format != lessee.FormatCSV || info.Delimiter != tt.delim || info.Encoding != tt.enc {
				t.Errorf("info = %s %q %s, want csv %q %s", info.Format, info.Delimiter, info.Encoding, tt.delim, tt.enc)
			}
			for c, name := range tt.columns {
				if info.Columns[c] != name {
					t.Errorf("Columns[%s] = %q, want %q", c, info.Columns[c], name)
				}
			}
			if strings.Join(info.IgnoredColumns, "|") != strings.Join(tt.ignored, "|") {
				t.Errorf("IgnoredColumns = %q, want %q", info.IgnoredColumns, tt.ignored)
			}
			if len(rows) != len(tt.rows) {
				t.Fatalf("got %d rows, want %d: %+v", len(rows), len(tt.rows), rows)
			}
			for i, want := range tt.rows {
				got := rows[i]
				if got.Index != i || got.Line != want.line {
					t.Errorf("row %d: Index %d Line %d, want Index %d Line %d", i, got.Index, got.Line, i, want.line)
				}
				for c, v := range want.cells {
					if got.Cells[c].Value != v || got.Cells[c].Kind != lessee.CellText {
						t.Errorf("row %d: %s = %q (kind %d), want %q text", i, c, got.Cells[c].Value, got.Cells[c].Kind, v)
					}
				}
				switch {
				case want.ragged == "" && got.Problem != nil:
					t.Errorf("row %d: unexpected problem %+v", i, got.Problem)
				case want.ragged != "" && (got.Problem == nil || got.Problem.Code != lessee.CodeRaggedRow || got.Problem.Message != want.ragged):
					t.Errorf("row %d: problem %+v, want RAGGED_ROW %q", i, got.Problem, want.ragged)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		code    lessee.Code
		line    int
		message string // a part of the message
	}{
		{"ErrEmpty", "empty.csv", lessee.CodeMissingHeader, 0, "empty"},
		{"ErrBlankOnly", "blank_only.csv", lessee.CodeMissingHeader, 0, "no header"},
		{"ErrNoHeader", "no_header.csv", lessee.CodeMissingHeader, 1, "not a header"},
		{"ErrMissingOperation", "missing_column.csv", lessee.CodeMissingColumn, 1, "operasjon"},
		{"ErrMissingVehicle", "missing_vehicle.csv", lessee.CodeMissingColumn, 1, `"registration_number" or "vin"`},
		{"ErrDuplicateColumn", "duplicate_column.csv", lessee.CodeDuplicateColumn, 1, `"regnr" and "kjennemerke"`},
		{"ErrLegacyXLS", "legacy.xls", lessee.CodeUnsupportedFormat, 0, "legacy .xls"},
		{"ErrEncrypted", "encrypted.xlsx", lessee.CodeEncryptedWorkbook, 0, "password"},
		{"ErrBinary", "junk.bin", lessee.CodeUnsupportedFormat, 0, "NUL"},
		{"ErrPDF", "document.pdf", lessee.CodeUnsupportedFormat, 0, "PDF"},
		{"ErrPNG", "image.png", lessee.CodeUnsupportedFormat, 0, "PNG"},
		{"ErrMixedEncoding", "mixed_encoding.csv", lessee.CodeEncodingError, 3, "line 3"},
		{"ErrUndefined1252", "undefined_1252.csv", lessee.CodeEncodingError, 2, "line 2"},
		{"ErrUTF16Unpaired", "utf16_unpaired.csv", lessee.CodeEncodingError, 2, "line 2"},
		{"ErrTextAfterQuote", "text_after_quote.csv", lessee.CodeUnsupportedFormat, 2, "text after its closing quote"},
		{"ErrUnclosedQuote", "unclosed_quote.csv", lessee.CodeUnsupportedFormat, 2, "never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Scan(context.Background(), fixture(tt.file), DefaultLimits())
			r := wantRefusal(t, err, tt.code, tt.line)
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message %q lacks %q", r.Message, tt.message)
			}
		})
	}
}

func TestNoHeaderMasksIdentityNumbers(t *testing.T) {
	t.Parallel()
	p := writeTemp(t, "x.csv", []byte("operation;regnr;01019012345\nadd;AB12345;x\n"))
	info, _, err := readAll(t, p, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.IgnoredColumns) != 1 || info.IgnoredColumns[0] != "010190*****" {
		t.Errorf("IgnoredColumns = %q, want the identity number masked", info.IgnoredColumns)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("ErrFileTooLarge", func(t *testing.T) {
		t.Parallel()
		_, err := Scan(ctx, fixture("utf8_semicolon.csv"), Limits{MaxBytes: 10})
		wantRefusal(t, err, lessee.CodeFileTooLarge, 0)
	})
	t.Run("ErrTooManyRows", func(t *testing.T) {
		t.Parallel()
		_, err := Scan(ctx, fixture("utf8_semicolon.csv"), Limits{MaxRows: 1})
		wantRefusal(t, err, lessee.CodeTooManyRows, 3)
	})
	t.Run("MaxRowsExactly", func(t *testing.T) {
		t.Parallel()
		info, err := Scan(ctx, fixture("utf8_semicolon.csv"), Limits{MaxRows: 2})
		if err != nil || info.Rows != 2 {
			t.Fatalf("Scan = %d rows, %v; want 2 rows", info.Rows, err)
		}
	})
	t.Run("ErrTooManyRowsOnOpen", func(t *testing.T) {
		t.Parallel()
		// Open alone reads only the header; Next meets the limit.
		tab, _, err := Open(ctx, fixture("utf8_semicolon.csv"), Limits{MaxRows: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer tab.Close()
		if _, err := tab.Next(); err != nil {
			t.Fatal(err)
		}
		_, err = tab.Next()
		wantRefusal(t, err, lessee.CodeTooManyRows, 3)
		if _, again := tab.Next(); !errors.Is(again, err) {
			t.Errorf("the table did not stay failed: %v", again)
		}
	})
	t.Run("ErrCellTooLarge", func(t *testing.T) {
		t.Parallel()
		p := writeTemp(t, "x.csv", []byte("operation;Kjennemerke\nadd;AB12345\nadd;ABCDEFGHIJKL\n"))
		_, err := Scan(ctx, p, Limits{MaxCellBytes: 11})
		r := wantRefusal(t, err, lessee.CodeCellTooLarge, 3)
		if !strings.Contains(r.Message, `column "Kjennemerke"`) {
			t.Errorf("message %q does not name the column", r.Message)
		}
	})
	t.Run("ErrCellTooLargeInHeader", func(t *testing.T) {
		t.Parallel()
		p := writeTemp(t, "x.csv", []byte("operation;registration_number\nadd;AB\n"))
		_, err := Scan(ctx, p, Limits{MaxCellBytes: 12})
		wantRefusal(t, err, lessee.CodeCellTooLarge, 1)
	})
	t.Run("ErrTooManyColumnsHeader", func(t *testing.T) {
		t.Parallel()
		_, err := Scan(ctx, fixture("utf8_semicolon.csv"), Limits{MaxColumns: 3})
		wantRefusal(t, err, lessee.CodeTooManyColumns, 1)
	})
	t.Run("ErrTooManyColumnsRow", func(t *testing.T) {
		t.Parallel()
		p := writeTemp(t, "x.csv", []byte("operation;vin\nadd;V\nadd;V;x;y;z\n"))
		_, err := Scan(ctx, p, Limits{MaxColumns: 4})
		wantRefusal(t, err, lessee.CodeTooManyColumns, 3)
	})
	t.Run("ErrUnclosedQuoteStopsEarly", func(t *testing.T) {
		t.Parallel()
		// An open quote would make the rest of the file one field; the guard
		// refuses it once it is longer than any cell may be, naming where
		// the quote opened.
		var b strings.Builder
		b.WriteString("operation;vin;reference\nadd;V;ok\nadd;V;\"open\n")
		for range 5000 {
			b.WriteString("add;V;r\n")
		}
		p := writeTemp(t, "x.csv", []byte(b.String()))
		_, err := Scan(ctx, p, Limits{MaxCellBytes: 64})
		r := wantRefusal(t, err, lessee.CodeCellTooLarge, 3)
		if !strings.Contains(r.Message, `column "reference"`) || !strings.Contains(r.Message, "quote") {
			t.Errorf("message %q should name the column and hint at the quote", r.Message)
		}
	})
	t.Run("ErrHugeRecord", func(t *testing.T) {
		t.Parallel()
		p := writeTemp(t, "x.csv", []byte("operation;vin\nadd;V"+strings.Repeat(";x", 100_000)+"\n"))
		_, err := Scan(ctx, p, Limits{MaxColumns: 10, MaxCellBytes: 16})
		wantRefusal(t, err, lessee.CodeTooManyColumns, 2)
	})
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("operation;vin\n")
	for range 3 * ctxEvery {
		b.WriteString("add;V\n")
	}
	p := writeTemp(t, "x.csv", []byte(b.String()))
	ctx, cancel := context.WithCancel(context.Background())
	tab, _, err := Open(ctx, p, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	cancel()
	for {
		_, err = tab.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
}

func TestSniffDelimiter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want rune
	}{
		{"a;b;c\n", ';'},
		{"a,b,c\n", ','},
		{"a\tb\tc\n", '\t'},
		{"\n\n;;\na,b;c,d\n", ','},  // blank lines and a line of delimiters skipped
		{`"a;b;c",d,e` + "\n", ','}, // delimiters in quotes do not count
		{"a;b,c\n", ';'},            // a tie goes to ';'
		{"operation\n", ','},        // nothing to count
		{"a,b\nc;d;e;f;g\n", ','},   // only the header line counts
		{"\"multi\nline\";x;y\nz,z,z,z\n", ';'},
		{"\n \n;;;\n", ';'}, // only padding lines: they still tell
	}
	for _, tt := range tests {
		if got := sniffDelimiter([]byte(tt.text)); got != tt.want {
			t.Errorf("sniffDelimiter(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestLFReader(t *testing.T) {
	t.Parallel()
	// One byte at a time, so a CRLF split across reads is exercised.
	in := "a\r\nb\rc\n\r\r\nd\r"
	r := &lfReader{r: &oneByteReader{s: in}}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\nb\nc\n\n\nd\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

type oneByteReader struct{ s string }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.s[0]
	o.s = o.s[1:]
	return 1, nil
}

func TestDetectEncodingSplitSequences(t *testing.T) {
	t.Parallel()
	// A multi-byte UTF-8 letter across the 64 KiB read boundary is still
	// UTF-8, and a Windows-1252 letter far past the start still decides.
	long := strings.Repeat("a", 64<<10-1) + "ø\n"
	enc, _, err := detectEncoding(&oneChunkReader{s: long, n: 4096})
	if err != nil || enc != encUTF8 {
		t.Errorf("split ø: enc %s, err %v; want UTF-8", enc, err)
	}
	late := strings.Repeat("a;b\n", 50_000) + "S\xf8ren\n"
	enc, _, err = detectEncoding(strings.NewReader(late))
	if err != nil || enc != enc1252 {
		t.Errorf("late ø: enc %s, err %v; want windows-1252", enc, err)
	}
}

type oneChunkReader struct {
	s string
	n int
}

func (o *oneChunkReader) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), o.n)], o.s)
	o.s = o.s[n:]
	return n, nil
}

func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 32 MiB file")
	}
	// 32 MiB of Windows-1252 rows: Scan must stream it, so the heap in use
	// stays far below the file size.
	p := filepath.Join(t.TempDir(), "big.csv")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	w.WriteString("Operasjon;Kjennemerke;Leietaker;Navn;Fra dato;Referanse\r\n")
	rows := 0
	for size := 0; size < 32<<20; rows++ {
		n, _ := fmt.Fprintf(w, "add;AB%05d;910000001;Bj\xf8rn \xc6rlig %d;2024-01-15;\"ref;%d\"\r\n", rows%100000, rows, rows)
		size += n
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
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
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	info, err := Scan(context.Background(), p, DefaultLimits())
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != rows || info.Encoding != enc1252 {
		t.Errorf("Scan = %d rows %s, want %d windows-1252", info.Rows, info.Encoding, rows)
	}
	t.Logf("peak heap in use: %d KiB", peak.Load()>>10)
	if peak.Load() > 16<<20 {
		t.Errorf("heap in use peaked at %d MiB reading a 32 MiB file", peak.Load()>>20)
	}
}

// TestQuoting checks the guard's reading of quotes against encoding/csv's
// lazy reading: bare quotes inside a field are text, row numbers stay the
// spreadsheet's, and ambiguous quoting is refused on the right row.
func TestQuoting(t *testing.T) {
	t.Parallel()
	const head = "operation,vin,reference\n"
	tests := []struct {
		name  string
		body  string
		refs  []string // reference of each record
		lines []int
		fail  int // refusal row; 0 if the file reads
	}{
		{"OK", "add,V,\"a,\"\"b\"\"\nc\"\nadd,W,d\n", []string{"a,\"b\"\nc", "d"}, []int{2, 3}, 0},
		{"OKBareQuotes", "add,V,17\" hjul\nadd,W,Kari \"K\" N\nadd,X,37'37.8\"N\n", []string{`17" hjul`, `Kari "K" N`, `37'37.8"N`}, []int{2, 3, 4}, 0},
		{"OKQuoteAfterSpace", "add,V, \"x\"\n", []string{`"x"`}, []int{2}, 0},
		{"OKQuotedAtEOF", "add,V,\"x\"", []string{"x"}, []int{2}, 0},
		{"OKEmptyQuoted", "add,V,\"\"\n\nadd,W,\"\"\"\"\n", []string{"", `"`}, []int{2, 4}, 0},
		{"ErrTextAfterClosingQuote", "add,V,ok\nadd,W,\"x\"y\nadd,X,z\n", nil, nil, 3},
		{"ErrUnclosed", "add,V,ok\n\nadd,W,\"x\nadd,X,z\n", nil, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeTemp(t, "q.csv", []byte(head+tt.body))
			if tt.fail > 0 {
				_, err := Scan(context.Background(), p, DefaultLimits())
				wantRefusal(t, err, lessee.CodeUnsupportedFormat, tt.fail)
				return
			}
			_, rows, err := readAll(t, p, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tt.refs) {
				t.Fatalf("%d records, want %d", len(rows), len(tt.refs))
			}
			for i, r := range rows {
				if got := r.Cells[lessee.ColReference].Value; got != tt.refs[i] || r.Line != tt.lines[i] {
					t.Errorf("record %d = %q on row %d, want %q on row %d", i, got, r.Line, tt.refs[i], tt.lines[i])
				}
			}
		})
	}
}

// TestSnapshotHeader: a snapshot needs no operation column, ignores and
// lists its operation and end_date columns, and must have lessee_id, whose
// absence would read as "no lessee" on every row; a change file still
// needs its operation column.
func TestSnapshotHeader(t *testing.T) {
	t.Parallel()
	snapshot := DefaultLimits()
	snapshot.Snapshot = true
	tests := []struct {
		name    string
		data    string
		limits  Limits
		code    lessee.Code // "" when accepted
		ignored []string
	}{
		{"OKExportColumns", "registration_number,vin,lessee_id,lessee_name,start_date,end_date\nEL10001,,,,,\n", snapshot, "", []string{"end_date"}},
		{"OKOperationIgnored", "Operasjon;regnr;leietaker;fra_dato;x\nadd;EL10001;;;1\n", snapshot, "", []string{"Operasjon", "x"}},
		{"ErrNoLesseeColumn", "registration_number,start_date\nEL10001,2026-01-01\n", snapshot, lessee.CodeMissingColumn, nil},
		{"ErrNoVehicleColumn", "lessee_id,start_date\n,2026-01-01\n", snapshot, lessee.CodeMissingColumn, nil},
		{"ErrChangeFileWithoutOperation", "registration_number,vin,lessee_id\nEL10001,,\n", DefaultLimits(), lessee.CodeMissingColumn, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, err := Scan(context.Background(), writeTemp(t, "f.csv", []byte(tt.data)), tt.limits)
			if tt.code != "" {
				r := wantRefusal(t, err, tt.code, 1)
				if tt.limits.Snapshot && tt.name == "ErrNoLesseeColumn" && !strings.Contains(r.Message, "lessee_id") {
					t.Errorf("message %q does not name lessee_id", r.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != 1 || !slices.Equal(info.IgnoredColumns, tt.ignored) {
				t.Errorf("rows %d, ignored %q; want 1, %q", info.Rows, info.IgnoredColumns, tt.ignored)
			}
			if info.Columns[lessee.ColOperation] != "" || info.Columns[lessee.ColEndDate] != "" {
				t.Errorf("a snapshot maps operation %q or end_date %q", info.Columns[lessee.ColOperation], info.Columns[lessee.ColEndDate])
			}
		})
	}
}
