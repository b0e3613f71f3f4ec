package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/fleetreg/lessee"
)

// quotedBreaks are references with every kind of line break inside quotes,
// which a cell must keep as the file has them.
var quotedBreaks = []string{"lf\nref", "crlf\r\nref", "cr\rref", "mixed\n\r\n\rref", "two\r\n\r\nbreaks", "\r\nfirst", "plain"}

// breakFile is a CSV of quotedBreaks, one per record, with recordEnd after
// every line (the header's included) and a blank line after the second
// record, and the spreadsheet row each record starts on.
func breakFile(recordEnd string) (string, []int) {
	var b strings.Builder
	b.WriteString("operation;registration_number;reference" + recordEnd)
	var lines []int
	line := 2
	for i, ref := range quotedBreaks {
		lines = append(lines, line)
		fmt.Fprintf(&b, "add;AB%05d;\"%s\"%s", i, ref, recordEnd)
		line++
		if i == 1 {
			b.WriteString(recordEnd) // a blank line: a row, no record
			line++
		}
	}
	return b.String(), lines
}

func TestCSVKeepsQuotedLineBreaks(t *testing.T) {
	t.Parallel()
	utf16le := func(s string) []byte {
		b := []byte{0xFF, 0xFE}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	win1252 := func(s string) []byte {
		b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, end := range []struct{ name, s string }{{"CRLF", "\r\n"}, {"LF", "\n"}, {"CR", "\r"}} {
		text, lines := breakFile(end.s)
		for _, enc := range []struct {
			name   string
			encode func(string) []byte
			suffix string // a last record that forces the encoding
			want   string
		}{
			{"UTF8", func(s string) []byte { return []byte(s) }, "", encUTF8},
			{"UTF8BOM", func(s string) []byte { return append([]byte("\ufeff"), s...) }, "", encUTF8},
			{"Windows1252", win1252, "add;AB99999;\"Bjørn\r\nÆrø\"", enc1252},
			{"UTF16LE", utf16le, "add;AB99999;\"Bjørn\r\nÆrø\"", encUTF16LE},
		} {
			t.Run(end.name+"/"+enc.name, func(t *testing.T) {
				t.Parallel()
				want := slices.Clone(quotedBreaks)
				wantLines := slices.Clone(lines)
				src := text
				if enc.suffix != "" {
					src += enc.suffix + end.s
					want = append(want, "Bjørn\r\nÆrø")
					wantLines = append(wantLines, lines[len(lines)-1]+1)
				}
				path := writeTemp(t, "breaks.csv", enc.encode(src))
				info, rows, err := readAll(t, path, DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				if info.Encoding != enc.want {
					t.Errorf("encoding = %s, want %s", info.Encoding, enc.want)
				}
				if len(rows) != len(want) {
					t.Fatalf("%d rows, want %d", len(rows), len(want))
				}
				for i, row := range rows {
					// A cell's value is trimmed of surrounding white
					// space, line breaks included; those inside stay.
					if got := row.Cells[lessee.ColReference].Value; got != strings.TrimSpace(want[i]) {
						t.Errorf("row %d: reference %q, want %q", i, got, strings.TrimSpace(want[i]))
					}
					if row.Line != wantLines[i] {
						t.Errorf("row %d: line %d, want %d", i, row.Line, wantLines[i])
					}
				}
				// The original cells, untrimmed, are the file's too.
				_, _, orig := readOriginal(t, path)
				for i, cells := range orig {
					if cells[2] != want[i] {
						t.Errorf("original cells %d: %q, want reference %q", i, cells, want[i])
					}
				}
			})
		}
	}
}

// TestCSVQuotedLineBreaksLongFile: past every buffer, with line ends that
// change kind on every line, each cell still gets its own breaks back, row
// numbers hold, and the log of breaks stays as small as the read-ahead.
func TestCSVQuotedLineBreaksLongFile(t *testing.T) {
	t.Parallel()
	const records = 60000
	ends := []string{"\r\n", "\n", "\r"}
	var b strings.Builder
	b.WriteString("operation,registration_number,reference\n")
	ref := func(i int) string { return fmt.Sprintf("r%d%sx%sy", i, ends[i%3], ends[(i+1)%3]) }
	for i := range records {
		fmt.Fprintf(&b, "add,AB%05d,\"%s\"%s", i%100000, ref(i), ends[(i+2)%3])
	}
	path := writeTemp(t, "long.csv", []byte(b.String()))
	tab, _, err := Open(context.Background(), path, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	ct := tab.(*csvTable)
	maxRuns := 0
	for i := 0; ; i++ {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			if i != records {
				t.Fatalf("%d records, want %d", i, records)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := row.Cells[lessee.ColReference].Value; got != ref(i) {
			t.Fatalf("record %d: reference %q, want %q", i, got, ref(i))
		}
		if row.Line != i+2 {
			t.Fatalf("record %d: line %d, want %d", i, row.Line, i+2)
		}
		maxRuns = max(maxRuns, len(ct.breaks.runs))
	}
	// Three breaks a record, each of another kind than the last: a log
	// that kept the whole file would hold 180,000 runs.
	if maxRuns > 60000 {
		t.Errorf("the break log held up to %d runs", maxRuns)
	}
}

func TestLFReaderRecordsBreaks(t *testing.T) {
	t.Parallel()
	// One byte at a time, so that a CR's kind is known only at the next
	// read; a CR last in the input is a lone CR.
	in := "a\r\nb\rc\n\r\r\nd\r"
	log := &breakLog{}
	out, err := io.ReadAll(&lfReader{r: &oneByteReader{s: in}, breaks: log})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\nb\nc\n\n\nd\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	var got []string
	for i := range 6 {
		got = append(got, log.kind(i).String())
	}
	if want := []string{"\r\n", "\r", "\n", "\r", "\r\n", "\r"}; !slices.Equal(got, want) {
		t.Errorf("breaks %q, want %q", got, want)
	}
	if log.first != 5 || len(log.runs) != 1 {
		t.Errorf("after kind(5) the log holds %+v, want only break 5", log)
	}
}

// FuzzQuotedCells: whatever a quoted cell holds, line breaks of any kind
// included, Original gives it back byte for byte, and the record's row is
// the one a spreadsheet shows, after records that end in any kind of break.
func FuzzQuotedCells(f *testing.F) {
	f.Add("lf\nref", "cr\rlf\n", uint8(0))
	f.Add("\r\n\r\n", "a\r\r\nb", uint8(1))
	f.Add(`"`, "\n\"\r", uint8(2))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, a, b string, ends uint8) {
		for _, s := range []string{a, b} {
			if !utf8.ValidString(s) || len(s) > 1000 || strings.ContainsFunc(s, func(r rune) bool {
				return r < 0x20 && r != '\r' && r != '\n' && r != '\t'
			}) {
				t.Skip("not text a CSV reader accepts")
			}
		}
		eol := []string{"\r\n", "\n", "\r"}
		end := func(i int) string { return eol[(int(ends)>>(2*i))%3] }
		quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
		text := "operation;reference;lessee_name;vin" + end(0) +
			"add;" + quote(a) + ";" + quote(b) + ";x" + end(1) +
			end(2) + // a blank line: a row, no record
			"remove;" + quote(b) + ";" + quote(a) + ";y" + end(3)
		tmp, err := os.CreateTemp(dir, "quoted")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.WriteString(text); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Close(); err != nil {
			t.Fatal(err)
		}
		_, lines, cells := readOriginal(t, tmp.Name())
		want := [][]string{{"add", a, b, "x"}, {"remove", b, a, "y"}}
		if !slices.EqualFunc(cells, want, slices.Equal) {
			t.Fatalf("cells %q, want %q", cells, want)
		}
		second := 4
		if end(1) == "\r" && end(2) == "\n" {
			second = 3 // the two make one CRLF: no blank line
		}
		if !slices.Equal(lines, []int{2, second}) {
			t.Errorf("rows %v, want [2 %d]", lines, second)
		}
	})
}
