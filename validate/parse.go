// Package validate holds the pure decisions of lessee change ingestion.
//
// ParseRow checks one record's own fields and turns it into a lessee.Row: a
// normalised lessee.Change, or a lessee.Problem naming the first field that
// failed. KeysFor names what a chunk of rows needs from the registry, and
// Decide judges the rows, in file order, against a lessee.State loaded for
// those keys: authority (terms, fleet-owner role, delegation), then the
// vehicle, then the lessee state. Decide changes the state in place so that a
// later row sees what an earlier row of the same file did.
//
// Nothing here does I/O or reads a clock; the job carries the processing date
// and the time the decision is made, so retries decide alike. Messages go into
// receipts and may reach logs: they name the field by its canonical column
// name, say what to do, and never carry an unmasked national identity number.
package validate

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// Config holds the registry-wide rules validation depends on.
type Config struct {
	// AllowSynthetic accepts synthetic test identity numbers (month + 40 or
	// + 80); set it only in test registries.
	AllowSynthetic bool
}

// Job is what validation needs to know about the file being processed.
type Job struct {
	ID             string
	Submitter      string      // orgnr from the object key
	ProcessingDate lessee.Date // default end_date of a remove
	Now            time.Time   // when terms and revocations are judged
}

// MaxTextLen is the most characters reference and lessee_name may hold.
const MaxTextLen = 200

// operation maps the accepted spellings of the operation column, in any case.
func operation(s string) (lessee.Operation, bool) {
	switch strings.ToLower(s) {
	case "add", "legg_til", "leggtil", "opprette":
		return lessee.OpAdd, true
	case "remove", "fjerne", "avslutte", "slett":
		return lessee.OpRemove, true
	}
	return "", false
}

// excelNumber is the message for an identifier that Excel stored as a number.
const excelNumber = "Excel stored the value as a number, which loses leading zeros and long digits; format the column as text and enter the value again"

// ParseRow checks one record's own fields. Cells are trimmed; the first failed
// check, in column order operation, vehicle, lessee_id, on_behalf_of, dates,
// lengths, names the Problem. A Problem the reader already found is kept. The
// Echo is filled whatever the outcome, with the lessee masked.
func ParseRow(cfg Config, job Job, raw lessee.RawRow) lessee.Row {
	var c [lessee.NumColumns]lessee.Cell
	for i, cell := range raw.Cells {
		c[i] = lessee.Cell{Value: strings.TrimSpace(cell.Value), Kind: cell.Kind}
	}
	row := lessee.Row{Index: raw.Index, Line: raw.Line, Echo: echo(c)}
	if raw.Problem != nil {
		p := *raw.Problem
		p.Message = ident.MaskText(p.Message)
		row.Problem = &p
		return row
	}
	ch, p := parseChange(cfg, job, c)
	if p != nil {
		row.Problem = p
		return row
	}
	row.Change = ch
	return row
}

// echo fills what the receipt repeats. The lessee is masked unless it is an
// organisation number; free text and invalid identifiers have any 11-digit
// run masked, in case a personal identity number landed in the wrong column.
func echo(c [lessee.NumColumns]lessee.Cell) lessee.Echo {
	e := lessee.Echo{
		Reference:          ident.MaskText(c[lessee.ColReference].Value),
		Operation:          ident.MaskText(c[lessee.ColOperation].Value),
		RegistrationNumber: ident.MaskText(c[lessee.ColRegistrationNumber].Value),
		VIN:                ident.MaskText(c[lessee.ColVIN].Value),
		Lessee:             ident.Mask(ident.NormaliseID(c[lessee.ColLesseeID].Value)),
	}
	if r, err := ident.NormaliseRegNumber(c[lessee.ColRegistrationNumber].Value); err == nil {
		e.RegistrationNumber = r
	}
	if v, err := ident.VIN(c[lessee.ColVIN].Value); err == nil {
		e.VIN = v
	}
	return e
}

func problem(code lessee.Code, col lessee.Column, format string, args ...any) *lessee.Problem {
	msg := col.String() + ": " + fmt.Sprintf(format, args...)
	return &lessee.Problem{Code: code, Message: ident.MaskText(msg)}
}

// invalid reports an identifier that failed its rule, blaming Excel when the
// cell was numeric.
func invalid(code lessee.Code, col lessee.Column, cell lessee.Cell, err error) *lessee.Problem {
	if cell.Kind == lessee.CellNumber {
		return problem(code, col, excelNumber)
	}
	return problem(code, col, "%v", err)
}

func parseChange(cfg Config, job Job, c [lessee.NumColumns]lessee.Cell) (lessee.Change, *lessee.Problem) {
	var ch lessee.Change

	op := c[lessee.ColOperation].Value
	if op == "" {
		return ch, problem(lessee.CodeMissingField, lessee.ColOperation, "is empty; write add or remove")
	}
	var ok bool
	if ch.Operation, ok = operation(op); !ok {
		return ch, problem(lessee.CodeInvalidOperation, lessee.ColOperation,
			"is not a known operation; write add (legg_til, opprette) or remove (fjerne, avslutte)")
	}

	reg, vin := c[lessee.ColRegistrationNumber], c[lessee.ColVIN]
	if reg.Value == "" && vin.Value == "" {
		return ch, problem(lessee.CodeMissingField, lessee.ColVIN,
			"both vin and registration_number are empty; give at least one to name the vehicle")
	}
	if reg.Value != "" {
		r, err := ident.NormaliseRegNumber(reg.Value)
		if err != nil {
			return ch, invalid(lessee.CodeInvalidRegNumber, lessee.ColRegistrationNumber, reg, err)
		}
		ch.RegistrationNumber = r
	}
	if vin.Value != "" {
		v, err := ident.VIN(vin.Value)
		if err != nil {
			return ch, problem(lessee.CodeInvalidVIN, lessee.ColVIN, "%v", err)
		}
		ch.VIN = v
	}

	id := c[lessee.ColLesseeID]
	switch {
	case id.Value == "" && ch.Operation == lessee.OpAdd:
		return ch, problem(lessee.CodeMissingField, lessee.ColLesseeID,
			"is empty; add needs the lessee's national identity number, D-number or organisation number")
	case id.Value != "":
		norm := ident.NormaliseID(id.Value)
		if _, err := ident.LesseeID(norm, cfg.AllowSynthetic); err != nil {
			return ch, invalid(lessee.CodeInvalidLesseeID, lessee.ColLesseeID, id, err)
		}
		ch.LesseeID = norm
	}

	if obo := c[lessee.ColOnBehalfOf]; obo.Value != "" {
		norm := ident.NormaliseID(obo.Value)
		if err := ident.OrgNr(norm); err != nil {
			return ch, invalid(lessee.CodeInvalidOnBehalfOf, lessee.ColOnBehalfOf, obo,
				fmt.Errorf("must be the fleet owner's organisation number: %w", err))
		}
		ch.OnBehalfOf = norm
	}

	start, end := c[lessee.ColStartDate], c[lessee.ColEndDate]
	if start.Value == "" && ch.Operation == lessee.OpAdd {
		return ch, problem(lessee.CodeMissingField, lessee.ColStartDate, "is empty; add needs the date the lease starts")
	}
	var p *lessee.Problem
	if ch.StartDate, p = dateCell(lessee.ColStartDate, start); p != nil {
		return ch, p
	}
	if ch.EndDate, p = dateCell(lessee.ColEndDate, end); p != nil {
		return ch, p
	}
	switch ch.Operation {
	case lessee.OpRemove:
		if ch.EndDate.IsZero() {
			ch.EndDate = job.ProcessingDate
		}
	case lessee.OpAdd:
		if !ch.EndDate.IsZero() && ch.EndDate.Before(ch.StartDate) {
			return ch, problem(lessee.CodeEndBeforeStart, lessee.ColEndDate,
				"%s is before start_date %s; correct one of the dates", ch.EndDate, ch.StartDate)
		}
	}

	for _, col := range []lessee.Column{lessee.ColReference, lessee.ColLesseeName} {
		if n := utf8.RuneCountInString(c[col].Value); n > MaxTextLen {
			return ch, problem(lessee.CodeFieldTooLong, col, "has %d characters; shorten it to at most %d", n, MaxTextLen)
		}
	}
	ch.Reference = c[lessee.ColReference].Value
	ch.LesseeName = c[lessee.ColLesseeName].Value
	return ch, nil
}

// dateCell parses an optional date cell; "" gives the zero date.
func dateCell(col lessee.Column, cell lessee.Cell) (lessee.Date, *lessee.Problem) {
	if cell.Value == "" {
		return "", nil
	}
	d, err := ParseDate(cell.Value)
	if err != nil {
		if cell.Kind == lessee.CellNumber {
			return "", problem(lessee.CodeInvalidDate, col,
				"Excel stored the date as a plain number; format the column as a date, or as text written YYYY-MM-DD")
		}
		return "", problem(lessee.CodeInvalidDate, col, "%v", err)
	}
	return d, nil
}

// Dates outside these years are taken for typing errors.
const (
	minYear = 1900
	maxYear = 2199
)

var errDateFormat = errors.New("is not a date; write YYYY-MM-DD (2026-01-31) or DD.MM.YYYY (31.01.2026)")

// ParseDate parses a civil date written YYYY-MM-DD, DD.MM.YYYY or D.M.YYYY
// (the day and month of the dotted form may have one or two digits), after
// trimming spaces. The date must exist in the calendar and lie in the years
// 1900–2199. Nothing else is guessed at: no two-digit years, no slashes, no
// times, no Excel serial numbers.
func ParseDate(s string) (lessee.Date, error) {
	s = strings.TrimSpace(s)
	var ys, ms, ds string
	if len(s) == 10 && s[4] == '-' && s[7] == '-' {
		ys, ms, ds = s[:4], s[5:7], s[8:]
	} else {
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			return "", errDateFormat
		}
		ds, ms, ys = parts[0], parts[1], parts[2]
		if len(ds) < 1 || len(ds) > 2 || len(ms) < 1 || len(ms) > 2 || len(ys) != 4 {
			return "", errDateFormat
		}
	}
	y, okY := atoi(ys)
	m, okM := atoi(ms)
	d, okD := atoi(ds)
	if !okY || !okM || !okD {
		return "", errDateFormat
	}
	if y < minYear || y > maxYear {
		return "", fmt.Errorf("year %d is out of range; write a year from %d to %d", y, minYear, maxYear)
	}
	if m < 1 || m > 12 {
		return "", fmt.Errorf("month %d does not exist; months run from 1 to 12", m)
	}
	if d < 1 || d > daysIn(y, m) {
		return "", fmt.Errorf("day %d does not exist in %04d-%02d", d, y, m)
	}
	return lessee.Date(fmt.Sprintf("%04d-%02d-%02d", y, m, d)), nil
}

// atoi parses a short run of ASCII digits; signs and spaces are refused.
func atoi(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

// daysIn is the number of days of a month (day 0 of the next month is the
// last of this one).
func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
