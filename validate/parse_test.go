package validate

import (
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
)

// Identity numbers used throughout; all check digits verified independently.
const (
	person1   = "01019012480" // fødselsnummer, born 1990-01-01
	person2   = "05058050085" // fødselsnummer, born 1880-05-05
	dnumber   = "41019012393" // D-number
	synthetic = "01419012382" // month + 40
	vin1      = "WVWZZZ1JZXW000001"
	vin2      = "WVWZZZ1JZXW000002"
	vin3      = "WVWZZZ1JZXW000003"
	vin4      = "WVWZZZ1JZXW000004"
	vinNone   = "WVWZZZ1JZXW000009"
)

// cells is a row written as a map of column to text.
type cells map[lessee.Column]string

func raw(index int, c cells) lessee.RawRow {
	r := lessee.RawRow{Index: index, Line: index + 2}
	for col, v := range c {
		r.Cells[col] = lessee.Cell{Value: v}
	}
	return r
}

func testJob() Job {
	return Job{
		ID:             "job1",
		Submitter:      orgS,
		ProcessingDate: "2026-03-01",
		Now:            now,
	}
}

// elevenDigits reports whether s holds a run of exactly 11 digits.
func elevenDigits(s string) bool {
	n := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			n++
			continue
		}
		if n == 11 {
			return true
		}
		n = 0
	}
	return false
}

func TestParseRow(t *testing.T) {
	t.Parallel()
	addOK := func(mod func(c cells)) cells {
		c := cells{
			lessee.ColOperation:          "add",
			lessee.ColRegistrationNumber: "ab 12345",
			lessee.ColVIN:                vin1,
			lessee.ColLesseeID:           person1,
			lessee.ColLesseeName:         "Nordmann",
			lessee.ColStartDate:          "2026-01-01",
			lessee.ColReference:          "ref-1",
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name   string
		cells  cells
		kinds  map[lessee.Column]lessee.CellKind
		synth  bool
		code   lessee.Code
		field  string
		msg    string // substring of the message
		change lessee.Change
	}{
		{name: "OK", cells: addOK(nil), change: lessee.Change{
			Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
			LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1",
		}},
		{name: "OKNorwegianAddUpper", cells: addOK(func(c cells) { c[lessee.ColOperation] = " OPPRETTE " }),
			change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
				LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1"}},
		{name: "OKRemoveDefaultsEndDate", cells: cells{
			lessee.ColOperation: "Avslutte", lessee.ColVIN: " " + strings.ToLower(vin1) + " ",
		}, change: lessee.Change{Operation: lessee.OpRemove, VIN: vin1, EndDate: "2026-03-01"}},
		{name: "OKRemoveAliases", cells: cells{
			lessee.ColOperation: "slett", lessee.ColRegistrationNumber: "EL-12345", lessee.ColEndDate: "5.3.2026",
			lessee.ColLesseeID: "010190 12480", lessee.ColOnBehalfOf: "974 760 673",
		}, change: lessee.Change{Operation: lessee.OpRemove, RegistrationNumber: "EL12345", LesseeID: person1,
			EndDate: "2026-03-05", OnBehalfOf: orgF}},
		{name: "OKDottedDates", cells: addOK(func(c cells) {
			c[lessee.ColStartDate] = "01.02.2026"
			c[lessee.ColEndDate] = "1.3.2026"
			c[lessee.ColLesseeID] = dnumber
			c[lessee.ColOperation] = "legg_til"
		}), change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: dnumber,
			LesseeName: "Nordmann", StartDate: "2026-02-01", EndDate: "2026-03-01", Reference: "ref-1"}},
		{name: "OKNumberCellValidOrgNr", cells: addOK(func(c cells) {
			c[lessee.ColLesseeID] = orgC
			c[lessee.ColOnBehalfOf] = orgF
		}), kinds: map[lessee.Column]lessee.CellKind{lessee.ColLesseeID: lessee.CellNumber, lessee.ColOnBehalfOf: lessee.CellNumber},
			change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: orgC,
				LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1", OnBehalfOf: orgF}},
		{name: "OKDateCell", cells: addOK(nil), kinds: map[lessee.Column]lessee.CellKind{lessee.ColStartDate: lessee.CellDate},
			change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
				LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1"}},
		{name: "OKSyntheticAllowed", synth: true, cells: addOK(func(c cells) { c[lessee.ColLesseeID] = synthetic }),
			change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: synthetic,
				LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1"}},
		{name: "OKEndDayAfterStart", cells: addOK(func(c cells) { c[lessee.ColEndDate] = "2026-01-02" }),
			change: lessee.Change{Operation: lessee.OpAdd, RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
				LesseeName: "Nordmann", StartDate: "2026-01-01", EndDate: "2026-01-02", Reference: "ref-1"}},
		{name: "OKOnlyVIN", cells: addOK(func(c cells) { delete(c, lessee.ColRegistrationNumber) }),
			change: lessee.Change{Operation: lessee.OpAdd, VIN: vin1, LesseeID: person1,
				LesseeName: "Nordmann", StartDate: "2026-01-01", Reference: "ref-1"}},

		{name: "ErrMissingOperation", cells: addOK(func(c cells) { c[lessee.ColOperation] = "  " }),
			code: lessee.CodeMissingField, field: "operation", msg: "operation: is empty"},
		{name: "ErrInvalidOperation", cells: addOK(func(c cells) { c[lessee.ColOperation] = "update" }),
			code: lessee.CodeInvalidOperation, field: "operation", msg: "write add"},
		{name: "ErrMissingVehicle", cells: addOK(func(c cells) {
			delete(c, lessee.ColRegistrationNumber)
			c[lessee.ColVIN] = " "
		}), code: lessee.CodeMissingField, field: "vin", msg: "registration_number"},
		{name: "ErrInvalidRegNumber", cells: addOK(func(c cells) { c[lessee.ColRegistrationNumber] = "AB 123456" }),
			code: lessee.CodeInvalidRegNumber, field: "registration_number", msg: "2 to 7"},
		{name: "ErrInvalidRegNumberNumberCell", cells: addOK(func(c cells) { c[lessee.ColRegistrationNumber] = "1.2345E+10" }),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColRegistrationNumber: lessee.CellNumber},
			code:  lessee.CodeInvalidRegNumber, field: "registration_number", msg: "Excel stored the value as a number"},
		{name: "ErrInvalidVIN", cells: addOK(func(c cells) { c[lessee.ColVIN] = "WVWZZZ1JZXWO00001" }),
			code: lessee.CodeInvalidVIN, field: "vin", msg: "letter O at position 12"},
		{name: "ErrMissingLesseeID", cells: addOK(func(c cells) { delete(c, lessee.ColLesseeID) }),
			code: lessee.CodeMissingField, field: "lessee_id", msg: "lessee_id: is empty"},
		{name: "ErrInvalidLesseeIDCheckDigit", cells: addOK(func(c cells) { c[lessee.ColLesseeID] = "01019012481" }),
			code: lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "check digits"},
		{name: "ErrInvalidLesseeIDLeadingZero", cells: addOK(func(c cells) { c[lessee.ColLesseeID] = "1019012480" }),
			code: lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "leading zero was lost"},
		{name: "ErrInvalidLesseeIDScientific", cells: addOK(func(c cells) { c[lessee.ColLesseeID] = "1.01901E+10" }),
			code: lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "scientific notation"},
		{name: "ErrInvalidLesseeIDNumberCell", cells: addOK(func(c cells) { c[lessee.ColLesseeID] = "1019012480" }),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColLesseeID: lessee.CellNumber},
			code:  lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "format the column as text"},
		{name: "ErrInvalidLesseeIDSynthetic", cells: addOK(func(c cells) { c[lessee.ColLesseeID] = synthetic }),
			code: lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "synthetic"},
		{name: "ErrInvalidLesseeIDOnRemove", cells: cells{lessee.ColOperation: "remove", lessee.ColVIN: vin1, lessee.ColLesseeID: "abc"},
			code: lessee.CodeInvalidLesseeID, field: "lessee_id"},
		{name: "ErrInvalidOnBehalfOf", cells: addOK(func(c cells) { c[lessee.ColOnBehalfOf] = "974760674" }),
			code: lessee.CodeInvalidOnBehalfOf, field: "on_behalf_of", msg: "organisation number"},
		{name: "ErrInvalidOnBehalfOfPerson", cells: addOK(func(c cells) { c[lessee.ColOnBehalfOf] = person2 }),
			code: lessee.CodeInvalidOnBehalfOf, field: "on_behalf_of"},
		{name: "ErrInvalidOnBehalfOfNumberCell", cells: addOK(func(c cells) { c[lessee.ColOnBehalfOf] = "9.74761E+08" }),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColOnBehalfOf: lessee.CellNumber},
			code:  lessee.CodeInvalidOnBehalfOf, field: "on_behalf_of", msg: "Excel stored the value as a number"},
		{name: "ErrMissingStartDate", cells: addOK(func(c cells) { delete(c, lessee.ColStartDate) }),
			code: lessee.CodeMissingField, field: "start_date"},
		{name: "ErrInvalidDateFormat", cells: addOK(func(c cells) { c[lessee.ColStartDate] = "2026/01/01" }),
			code: lessee.CodeInvalidDate, field: "start_date", msg: "YYYY-MM-DD"},
		{name: "ErrInvalidDateImpossible", cells: addOK(func(c cells) { c[lessee.ColStartDate] = "29.02.2026" }),
			code: lessee.CodeInvalidDate, field: "start_date", msg: "day 29"},
		{name: "ErrInvalidDateSerial", cells: addOK(func(c cells) { c[lessee.ColStartDate] = "46023" }),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColStartDate: lessee.CellNumber},
			code:  lessee.CodeInvalidDate, field: "start_date", msg: "Excel stored the date as a plain number"},
		{name: "ErrInvalidEndDate", cells: cells{lessee.ColOperation: "remove", lessee.ColVIN: vin1, lessee.ColEndDate: "31.04.2026"},
			code: lessee.CodeInvalidDate, field: "end_date", msg: "day 31"},
		{name: "ErrEndBeforeStart", cells: addOK(func(c cells) { c[lessee.ColEndDate] = "2025-12-31" }),
			code: lessee.CodeEndBeforeStart, field: "end_date", msg: "before start_date 2026-01-01"},
		{name: "ErrEndOnStart", cells: addOK(func(c cells) { c[lessee.ColEndDate] = "01.01.2026" }),
			code: lessee.CodeEndBeforeStart, field: "end_date", msg: "end date must be after the start date"},
		{name: "ErrFieldTooLongReference", cells: addOK(func(c cells) { c[lessee.ColReference] = strings.Repeat("ø", 201) }),
			code: lessee.CodeFieldTooLong, field: "reference", msg: "201 characters"},
		{name: "ErrFieldTooLongName", cells: addOK(func(c cells) { c[lessee.ColLesseeName] = strings.Repeat("x", 300) }),
			code: lessee.CodeFieldTooLong, field: "lessee_name"},
		{name: "ErrOperationBeforeVehicle", cells: cells{lessee.ColOperation: "x", lessee.ColVIN: "bad"},
			code: lessee.CodeInvalidOperation, field: "operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := raw(4, tt.cells)
			for col, k := range tt.kinds {
				r.Cells[col].Kind = k
			}
			row := ParseRow(Config{AllowSynthetic: tt.synth}, testJob(), r)
			if row.Index != 4 || row.Line != 6 {
				t.Errorf("Index, Line = %d, %d; want 4, 6", row.Index, row.Line)
			}
			if tt.code == "" {
				if row.Problem != nil {
					t.Fatalf("unexpected problem %+v", *row.Problem)
				}
				if row.Change != tt.change {
					t.Fatalf("change = %+v\nwant     %+v", row.Change, tt.change)
				}
				return
			}
			p := row.Problem
			if p == nil {
				t.Fatalf("no problem, want %s", tt.code)
			}
			if p.Code != tt.code || !strings.Contains(p.Message, tt.msg) {
				t.Fatalf("problem = %+v; want code %s field %q message containing %q", *p, tt.code, tt.field, tt.msg)
			}
			if !strings.HasPrefix(p.Message, tt.field+": ") {
				t.Errorf("message %q does not start with the field", p.Message)
			}
			if elevenDigits(p.Message) {
				t.Errorf("message %q carries an 11-digit number", p.Message)
			}
		})
	}
}

func TestParseRowEcho(t *testing.T) {
	t.Parallel()
	t.Run("OKMasked", func(t *testing.T) {
		t.Parallel()
		row := ParseRow(Config{}, testJob(), raw(0, cells{
			lessee.ColOperation: " Add ", lessee.ColRegistrationNumber: "ab-12345", lessee.ColVIN: strings.ToLower(vin1),
			lessee.ColLesseeID: person1, lessee.ColStartDate: "2026-01-01", lessee.ColReference: " r1 ",
		}))
		want := lessee.Echo{Reference: "r1", Operation: "Add", RegistrationNumber: "AB12345", VIN: vin1, Lessee: "*********80"}
		if row.Echo != want {
			t.Fatalf("echo = %+v, want %+v", row.Echo, want)
		}
	})
	t.Run("OKPrintedFormMasked", func(t *testing.T) {
		t.Parallel()
		row := ParseRow(Config{}, testJob(), raw(0, cells{lessee.ColLesseeID: "010190 12480"}))
		if row.Echo.Lessee != "*********80" {
			t.Fatalf("lessee echo = %q", row.Echo.Lessee)
		}
	})
	t.Run("OKOrgNrVisible", func(t *testing.T) {
		t.Parallel()
		row := ParseRow(Config{}, testJob(), raw(0, cells{lessee.ColLesseeID: orgC}))
		if row.Echo.Lessee != orgC {
			t.Fatalf("lessee echo = %q", row.Echo.Lessee)
		}
	})
	t.Run("OKInvalidKeptRawButMasked", func(t *testing.T) {
		t.Parallel()
		row := ParseRow(Config{}, testJob(), raw(0, cells{
			lessee.ColOperation: "add", lessee.ColRegistrationNumber: "AB!1", lessee.ColVIN: "short", lessee.ColLesseeID: "01019012481",
		}))
		if row.Echo.RegistrationNumber != "AB!1" || row.Echo.VIN != "short" || row.Echo.Lessee != "*********81" {
			t.Fatalf("echo = %+v", row.Echo)
		}
	})
	t.Run("OKStrayPersonIDMasked", func(t *testing.T) {
		t.Parallel()
		row := ParseRow(Config{}, testJob(), raw(0, cells{
			lessee.ColOperation: person1, lessee.ColRegistrationNumber: person1, lessee.ColVIN: person2, lessee.ColReference: "fnr " + person1,
		}))
		e := row.Echo
		for _, v := range []string{e.Operation, e.RegistrationNumber, e.VIN, e.Reference} {
			if elevenDigits(v) {
				t.Errorf("echo %+v carries an 11-digit number", e)
			}
		}
	})
	t.Run("ErrRaggedRowKept", func(t *testing.T) {
		t.Parallel()
		r := raw(0, cells{lessee.ColOperation: "add", lessee.ColLesseeID: person1})
		r.Problem = &lessee.Problem{Code: lessee.CodeRaggedRow, Message: "row has 12 fields, header has 9; lessee " + person1}
		row := ParseRow(Config{}, testJob(), r)
		if row.Problem == nil || row.Problem.Code != lessee.CodeRaggedRow {
			t.Fatalf("problem = %+v", row.Problem)
		}
		if elevenDigits(row.Problem.Message) {
			t.Errorf("message %q carries an 11-digit number", row.Problem.Message)
		}
		if row.Problem == r.Problem {
			t.Errorf("problem aliases the reader's")
		}
		if row.Echo.Operation != "add" || row.Echo.Lessee != "*********80" {
			t.Errorf("echo = %+v", row.Echo)
		}
	})
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want lessee.Date
		ok   bool
	}{
		{"2026-01-31", "2026-01-31", true},
		{" 2026-01-31 ", "2026-01-31", true},
		{"31.01.2026", "2026-01-31", true},
		{"1.2.2026", "2026-02-01", true},
		{"01.2.2026", "2026-02-01", true},
		{"29.02.2024", "2024-02-29", true},
		{"2000-02-29", "2000-02-29", true},
		{"1900-01-01", "1900-01-01", true},
		{"2199-12-31", "2199-12-31", true},
		{"2100-02-29", "", false},
		{"29.02.2026", "", false},
		{"2026-04-31", "", false},
		{"2026-13-01", "", false},
		{"2026-00-10", "", false},
		{"2026-01-00", "", false},
		{"1899-12-31", "", false},
		{"2200-01-01", "", false},
		{"2026-1-5", "", false},
		{"31.01.26", "", false},
		{"001.01.2026", "", false},
		{"31/01/2026", "", false},
		{"2026-01-31T00:00:00", "", false},
		{"+1.+1.2026", "", false},
		{"1..2026", "", false},
		{"46023", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseDate(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-01-31", "31.01.2026", "1.2.2026", "29.02.2024", "2026-02-30", "x.y.zzzz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if d != "" || err.Error() == "" {
				t.Fatalf("ParseDate(%q) = %q, %v", s, d, err)
			}
			return
		}
		if again, err := ParseDate(string(d)); err != nil || again != d {
			t.Fatalf("ParseDate(%q) = %q, which does not parse back: %q, %v", s, d, again, err)
		}
	})
}

func FuzzParseRow(f *testing.F) {
	f.Add("add", "AB 12345", vin1, person1, "2026-01-01", "", "", "ref", uint8(0))
	f.Add("remove", "", vin1, "", "", "1.2.2026", orgF, "", uint8(1))
	f.Add("fjerne", "EL-1", "", "1.01901E+10", "", "", "", "", uint8(2))
	f.Add("", "", "", "", "", "", "", "", uint8(3))
	f.Fuzz(func(t *testing.T, op, reg, vin, id, start, end, obo, ref string, kinds uint8) {
		r := raw(0, cells{
			lessee.ColOperation: op, lessee.ColRegistrationNumber: reg, lessee.ColVIN: vin, lessee.ColLesseeID: id,
			lessee.ColStartDate: start, lessee.ColEndDate: end, lessee.ColOnBehalfOf: obo, lessee.ColReference: ref,
		})
		for col := range r.Cells {
			r.Cells[col].Kind = lessee.CellKind((int(kinds) >> col) % 3)
		}
		row := ParseRow(Config{AllowSynthetic: kinds&1 == 1}, testJob(), r)
		if p := row.Problem; p != nil {
			if p.Code == "" || p.Message == "" || !strings.Contains(p.Message, ": ") {
				t.Fatalf("incomplete problem %+v", *p)
			}
			if elevenDigits(p.Message) {
				t.Fatalf("message %q carries an 11-digit number", p.Message)
			}
		} else {
			c := row.Change
			if c.Operation != lessee.OpAdd && c.Operation != lessee.OpRemove {
				t.Fatalf("operation %q", c.Operation)
			}
			if c.VIN == "" && c.RegistrationNumber == "" {
				t.Fatalf("no vehicle in %+v", c)
			}
			if c.EffectiveDate().IsZero() {
				t.Fatalf("no effective date in %+v", c)
			}
		}
		for _, v := range []string{row.Echo.Reference, row.Echo.Operation, row.Echo.RegistrationNumber, row.Echo.VIN, row.Echo.Lessee} {
			if elevenDigits(v) {
				t.Fatalf("echo %+v carries an 11-digit number", row.Echo)
			}
		}
		if l := row.Echo.Lessee; len(l) > 2 && !strings.HasPrefix(l, "*") && len(l) != 9 {
			t.Fatalf("lessee echo %q is not masked", l)
		}
		out := Decide(Config{}, testJob(), newFixture().state, []lessee.Row{row}).Outcomes
		if len(out) != 1 || out[0].Status == "" || out[0].Message == "" {
			t.Fatalf("outcome %+v", out)
		}
		if out[0].Status == lessee.StatusRejected && out[0].Code == "" {
			t.Fatalf("rejected without a code: %+v", out[0])
		}
	})
}
