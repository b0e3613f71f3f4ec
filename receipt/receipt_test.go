package receipt

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
)

func TestCSVWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []lessee.Result{
		{Line: 2, Echo: lessee.Echo{Reference: "=HYPERLINK(\"x\")", Operation: "add", RegistrationNumber: "AB12345", Lessee: "*********45"}, Status: lessee.StatusApplied, Message: "lessee added", ChangeID: "j-0"},
		{Line: 4, Echo: lessee.Echo{Reference: "r;2", Operation: "remove", VIN: "WVWZZZ1JZXW000001"}, Status: lessee.StatusRejected, Code: lessee.CodeNoActiveLessee, Message: "-no lessee\nto remove"},
	}
	for _, o := range outcomes {
		if err := w.Write(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()
	if !strings.HasPrefix(raw, "\ufeffrow,reference,") {
		t.Fatalf("receipt must start with BOM and header, got %q", raw[:20])
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(raw, "\ufeff")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(recs[0], ","), "row,reference,operation,registration_number,vin,lessee,status,code,message,change_id"; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	if recs[1][0] != "2" || recs[1][1] != "'=HYPERLINK(\"x\")" || recs[1][6] != "applied" || recs[1][9] != "j-0" {
		t.Errorf("row 1 = %q", recs[1])
	}
	if recs[2][0] != "4" || recs[2][1] != "r;2" || recs[2][7] != "NO_ACTIVE_LESSEE" || recs[2][8] != "'-no lessee\nto remove" {
		t.Errorf("row 2 = %q", recs[2])
	}
}

func TestNeutralise(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":           "",
		"=1+2":       "'=1+2",
		"+47":        "'+47",
		"-1":         "'-1",
		"@SUM(A1)":   "'@SUM(A1)",
		"\tx":        "'\tx",
		"\rx":        "'\rx",
		"AB12345":    "AB12345",
		"a=b":        "a=b",
		"2026-01-01": "2026-01-01",
	} {
		if got := Neutralise(in); got != want {
			t.Errorf("Neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummaryKeys(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	job := lessee.Job{ID: "j", Key: "inbox/923609016/a.csv", Version: "v", SHA256: "ab", Size: 10, Format: lessee.FormatCSV,
		State: lessee.JobCompleted, Applied: 2, Unchanged: 1, Rejected: 3, Codes: map[lessee.Code]int{lessee.CodeNotOwner: 3}, Started: start}
	b, err := NewSummary(job, start.Add(1500*time.Millisecond), "receipts/923609016/a.csv.receipt.csv").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key", "version", "sha256", "size", "format", "status", "rows", "applied", "unchanged", "rejected", "codes", "ignored_columns", "started", "finished"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks key %q", k)
		}
	}
	if m["rows"].(float64) != 6 || m["status"] != "completed" || m["duration_ms"].(float64) != 1500 {
		t.Errorf("summary = %s", b)
	}
	if _, ok := m["code"]; ok {
		t.Errorf("completed summary should have no code: %s", b)
	}
}

// TestCSVWriterEchoesLineBreaks: a cell goes out byte for byte, an LF, a
// CRLF or a lone CR inside it as given, while every record still ends with
// CRLF. encoding/csv's Writer with UseCRLF wrote the LF as CRLF and dropped
// the CR.
func TestCSVWriterEchoesLineBreaks(t *testing.T) {
	t.Parallel()
	refs := []string{"lf\nref", "crlf\r\nref", "cr\rref", "mixed\n\r\n\r\"q\",x", " space first", `\.`, "plain"}
	var buf bytes.Buffer
	w, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range refs {
		o := lessee.Result{Line: i + 2, Echo: lessee.Echo{Reference: ref, Operation: "add"}, Status: lessee.StatusApplied, Message: "m\nn", ChangeID: "j"}
		if err := w.Write(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "\ufeffrow,reference,operation,registration_number,vin,lessee,status,code,message,change_id\r\n" +
		"2,\"lf\nref\",add,,,,applied,,\"m\nn\",j\r\n" +
		"3,\"crlf\r\nref\",add,,,,applied,,\"m\nn\",j\r\n" +
		"4,\"cr\rref\",add,,,,applied,,\"m\nn\",j\r\n" +
		"5,\"mixed\n\r\n\r\"\"q\"\",x\",add,,,,applied,,\"m\nn\",j\r\n" +
		"6,\" space first\",add,,,,applied,,\"m\nn\",j\r\n" +
		"7,\"\\.\",add,,,,applied,,\"m\nn\",j\r\n" +
		"8,plain,add,,,,applied,,\"m\nn\",j\r\n"
	if got := buf.String(); got != want {
		t.Errorf("receipt =\n%q\nwant\n%q", got, want)
	}
	// A reader that keeps what is inside quotes gets every reference back;
	// encoding/csv's Reader itself reads CRLF inside quotes as LF.
	recs := csvRecords(t, buf.Bytes())
	for i, ref := range refs {
		if got, want := recs[i+1][1], strings.ReplaceAll(ref, "\r\n", "\n"); got != want {
			t.Errorf("reference %d read back as %q, want %q", i, got, want)
		}
	}
}

// TestCSVWriterQuotesAsEncodingCSV: for cells without line breaks the
// writer's output is encoding/csv's with UseCRLF, so receipts of ordinary
// files are unchanged byte for byte.
func TestCSVWriterQuotesAsEncodingCSV(t *testing.T) {
	t.Parallel()
	cells := []string{"", "a", "a,b", `a"b`, `"`, " a", "\ta", "\u00a0a", "a ", `\.`, `\.x`, "æøå", "'=1", "a;b", "a\tb"}
	var want bytes.Buffer
	cw := csv.NewWriter(&want)
	cw.UseCRLF = true
	for i := range cells {
		if err := cw.Write(cells[i:]); err != nil {
			t.Fatal(err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i := range cells {
		got = appendRecord(got, cells[i:])
	}
	if string(got) != want.String() {
		t.Errorf("appendRecord =\n%q\nencoding/csv =\n%q", got, want.String())
	}
}

// FuzzAppendRecord: a record without line breaks is encoded as
// encoding/csv's Writer with UseCRLF encodes it, and any record reads back
// through encoding/csv as its fields with each CRLF made LF (encoding/csv's
// one rewrite inside quotes).
func FuzzAppendRecord(f *testing.F) {
	f.Add("a", "b\nc", "d\r\ne\rf")
	f.Add(`"q"`, " lead", `\.`)
	f.Add("", ",", "x\r")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		record := []string{a, b, c}
		for _, s := range record {
			if !utf8.ValidString(s) {
				t.Skip("encoding/csv reads only UTF-8 faithfully")
			}
		}
		got := appendRecord(nil, record)
		if !strings.ContainsAny(a+b+c, "\r\n") {
			var want bytes.Buffer
			cw := csv.NewWriter(&want)
			cw.UseCRLF = true
			if err := cw.Write(record); err != nil {
				t.Fatal(err)
			}
			cw.Flush()
			if string(got) != want.String() {
				t.Fatalf("appendRecord(%q) = %q, encoding/csv %q", record, got, want.String())
			}
		}
		recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
		if err != nil {
			t.Fatalf("read back %q: %v", got, err)
		}
		want := []string{a, b, c}
		for i := range want {
			want[i] = strings.ReplaceAll(want[i], "\r\n", "\n")
		}
		if len(recs) != 1 || !slices.Equal(recs[0], want) {
			t.Fatalf("appendRecord(%q) = %q reads back as %q", record, got, recs)
		}
	})
}
