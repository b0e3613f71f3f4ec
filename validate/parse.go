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
// A snapshot, which states the lessee every vehicle of a fleet should have,
// goes through the same rules: ParseSnapshotRow checks a snapshot record's
// fields with ParseRow's checks and messages, and DecideSnapshot derives
// each row's operation (keep, add, replace or remove) from the registry and
// makes it with Decide's authority, vehicle and lessee-state checks,
// rejecting a later row that names a vehicle again (DUPLICATE_VEHICLE).
//
// Nothing here does I/O or reads a clock; the job carries the processing date
// and the time the decision is made, so retries decide alike. Messages go into
// receipts and may reach logs: they name the field by its canonical column
// name, say what to do, and never carry an unmasked national identity number.
// They come from the catalogue of package message, written in Job.Language.
package validate

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/message"
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
	// Language is what messages are written in: the submitter's. The zero
	// Language writes English; callers choose the default.
	Language lessee.Language
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

// ParseRow checks one record's own fields. Cells are trimmed; the first failed
// check, in column order operation, vehicle, lessee_id, on_behalf_of, dates,
// lengths, names the Problem. A Problem the reader already found is kept. The
// Echo is filled whatever the outcome, with the lessee masked.
func ParseRow(cfg Config, job Job, raw lessee.RawRow) lessee.Row {
	c := trimmed(raw)
	row := lessee.Row{Index: raw.Index, Line: raw.Line, Echo: echo(c)}
	if raw.Problem != nil {
		row.Problem = readerProblem(job, raw.Problem)
		return row
	}
	ch, p := parseChange(cfg, job, c)
	if p != nil {
		row.Problem = localize(job, p)
		return row
	}
	row.Change = ch
	return row
}

// ParseSnapshotRow checks one record of a snapshot: a row stating the
// lessee a vehicle should have. The first failed check, in column order
// vehicle (registration_number and/or vin, one required), lessee_id,
// on_behalf_of, start_date, lengths, names the Problem, with the messages
// of ParseRow; a Problem the reader already found is kept. The operation
// and end_date columns are not part of a snapshot and are ignored, so
// Echo.Operation is empty (DecideSnapshot fills it with the derived
// operation).
//
// lessee_id is optional: empty means the vehicle should have no lessee.
// start_date is optional here; whether the row needs it depends on the
// registry (see DecideSnapshot). Without a Problem, the Change has no
// Operation (DecideSnapshot derives it), StartDate is start_date and
// EndDate is the job's processing date, the date keep and remove are
// judged on; so KeysFor loads the history such a row needs.
//
// With a Problem, the Change is empty except RegistrationNumber, VIN and
// OnBehalfOf: each is set, normalised, when its own cell holds a valid
// one, whatever failed (another field, the other identifier, or the
// reader), so that the caller knows which vehicle a rejected row names,
// does not take it for one the snapshot left out, and takes a later row
// naming it for a duplicate.
func ParseSnapshotRow(cfg Config, job Job, raw lessee.RawRow) lessee.Row {
	c := trimmed(raw)
	c[lessee.ColOperation], c[lessee.ColEndDate] = lessee.Cell{}, lessee.Cell{}
	row := lessee.Row{Index: raw.Index, Line: raw.Line, Echo: echo(c)}
	var p *lessee.Problem
	if raw.Problem != nil {
		p = readerProblem(job, raw.Problem)
	} else {
		row.Change, p = parseSnapshotChange(cfg, job, c)
	}
	if p != nil {
		row.Problem = localize(job, p)
		row.Change = lessee.Change{}
		row.Change.RegistrationNumber, row.Change.VIN = validVehicleFields(c)
		if obo, q := onBehalfOfField(c[lessee.ColOnBehalfOf]); q == nil {
			row.Change.OnBehalfOf = obo
		}
	}
	return row
}

func parseSnapshotChange(cfg Config, job Job, c [lessee.NumColumns]lessee.Cell) (lessee.Change, *lessee.Problem) {
	ch := lessee.Change{EndDate: job.ProcessingDate}
	var p *lessee.Problem
	if ch.RegistrationNumber, ch.VIN, p = vehicleFields(c); p != nil {
		return ch, p
	}
	if ch.LesseeID, p = lesseeIDField(cfg, c[lessee.ColLesseeID]); p != nil {
		return ch, p
	}
	if ch.OnBehalfOf, p = onBehalfOfField(c[lessee.ColOnBehalfOf]); p != nil {
		return ch, p
	}
	if ch.StartDate, p = dateCell(lessee.ColStartDate, c[lessee.ColStartDate]); p != nil {
		return ch, p
	}
	if ch.Reference, ch.LesseeName, p = textFields(c); p != nil {
		return ch, p
	}
	return ch, nil
}

// trimmed returns the record's cells with spaces trimmed.
func trimmed(raw lessee.RawRow) [lessee.NumColumns]lessee.Cell {
	var c [lessee.NumColumns]lessee.Cell
	for i, cell := range raw.Cells {
		c[i] = lessee.Cell{Value: strings.TrimSpace(cell.Value), Kind: cell.Kind}
	}
	return c
}

// readerProblem copies a Problem the reader found, masked.
func readerProblem(job Job, p *lessee.Problem) *lessee.Problem {
	q := *p
	return localize(job, &q)
}

// localize writes p's message in the job's language, masked: the checks
// build their Problems in English, not knowing the job.
func localize(job Job, p *lessee.Problem) *lessee.Problem {
	p.Message = problemMessage(job.Language, p)
	return p
}

// problemMessage is p's message in lang, masked.
func problemMessage(lang lessee.Language, p *lessee.Problem) string {
	return ident.MaskText(message.ProblemText(lang, p))
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

// problem is a Problem about column col, in English until localize.
func problem(code lessee.Code, col lessee.Column, key message.Key, args ...any) *lessee.Problem {
	return message.Problem(lessee.English, code, message.Field(col, key, args...))
}

// invalid reports an identifier that failed its rule, blaming Excel when the
// cell was numeric.
func invalid(code lessee.Code, col lessee.Column, cell lessee.Cell, err error) *lessee.Problem {
	if cell.Kind == lessee.CellNumber {
		return problem(code, col, message.ExcelNumber)
	}
	return errProblem(code, col, err)
}

// errProblem is a Problem about column col saying err, which is written in
// the job's language when it carries a Text (ident's and ParseDate's do).
func errProblem(code lessee.Code, col lessee.Column, err error) *lessee.Problem {
	t, ok := message.TextOf(err)
	if !ok {
		return &lessee.Problem{Code: code, Message: col.String() + ": " + err.Error()}
	}
	t.Field = col.String()
	return message.Problem(lessee.English, code, t)
}

func parseChange(cfg Config, job Job, c [lessee.NumColumns]lessee.Cell) (lessee.Change, *lessee.Problem) {
	var ch lessee.Change

	op := c[lessee.ColOperation].Value
	if op == "" {
		return ch, problem(lessee.CodeMissingField, lessee.ColOperation, message.OperationEmpty)
	}
	var ok bool
	if ch.Operation, ok = operation(op); !ok {
		return ch, problem(lessee.CodeInvalidOperation, lessee.ColOperation, message.OperationUnknown)
	}

	var p *lessee.Problem
	if ch.RegistrationNumber, ch.VIN, p = vehicleFields(c); p != nil {
		return ch, p
	}

	id := c[lessee.ColLesseeID]
	if id.Value == "" && ch.Operation == lessee.OpAdd {
		return ch, problem(lessee.CodeMissingField, lessee.ColLesseeID, message.LesseeIDEmpty)
	}
	if ch.LesseeID, p = lesseeIDField(cfg, id); p != nil {
		return ch, p
	}
	if ch.OnBehalfOf, p = onBehalfOfField(c[lessee.ColOnBehalfOf]); p != nil {
		return ch, p
	}

	start, end := c[lessee.ColStartDate], c[lessee.ColEndDate]
	if start.Value == "" && ch.Operation == lessee.OpAdd {
		return ch, problem(lessee.CodeMissingField, lessee.ColStartDate, message.StartDateEmpty)
	}
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
		// A period runs up to, not including, its end, so one ending on its
		// start covers no day: recorded, it would hold no lessee yet make a
		// later add of that lessee from that day look unchanged.
		switch {
		case ch.EndDate.IsZero():
		case ch.EndDate.Before(ch.StartDate):
			return ch, problem(lessee.CodeEndBeforeStart, lessee.ColEndDate, message.EndBeforeStartDate, ch.EndDate, ch.StartDate)
		case ch.EndDate == ch.StartDate:
			return ch, problem(lessee.CodeEndBeforeStart, lessee.ColEndDate, message.EndOnStartDate, ch.EndDate)
		}
	}

	if ch.Reference, ch.LesseeName, p = textFields(c); p != nil {
		return ch, p
	}
	return ch, nil
}

// vehicleFields checks the columns that name the vehicle: at least one of
// registration_number and vin, each valid when given. It returns them
// normalised, or the first Problem.
func vehicleFields(c [lessee.NumColumns]lessee.Cell) (reg, vin string, _ *lessee.Problem) {
	rc, vc := c[lessee.ColRegistrationNumber], c[lessee.ColVIN]
	if rc.Value == "" && vc.Value == "" {
		return "", "", problem(lessee.CodeMissingField, lessee.ColVIN, message.VehicleEmpty)
	}
	if rc.Value != "" {
		r, err := ident.NormaliseRegNumber(rc.Value)
		if err != nil {
			return "", "", invalid(lessee.CodeInvalidRegNumber, lessee.ColRegistrationNumber, rc, err)
		}
		reg = r
	}
	if vc.Value != "" {
		v, err := ident.VIN(vc.Value)
		if err != nil {
			return "", "", errProblem(lessee.CodeInvalidVIN, lessee.ColVIN, err)
		}
		vin = v
	}
	return reg, vin, nil
}

// validVehicleFields returns, each on its own, registration_number and vin
// normalised when the cell holds a valid one, and "" otherwise.
func validVehicleFields(c [lessee.NumColumns]lessee.Cell) (reg, vin string) {
	if r, err := ident.NormaliseRegNumber(c[lessee.ColRegistrationNumber].Value); err == nil {
		reg = r
	}
	if v, err := ident.VIN(c[lessee.ColVIN].Value); err == nil {
		vin = v
	}
	return reg, vin
}

// lesseeIDField checks an optional lessee_id: "" gives "", anything else must
// be a national identity number, D-number or organisation number.
func lesseeIDField(cfg Config, id lessee.Cell) (string, *lessee.Problem) {
	if id.Value == "" {
		return "", nil
	}
	norm := ident.NormaliseID(id.Value)
	if _, err := ident.LesseeID(norm, cfg.AllowSynthetic); err != nil {
		return "", invalid(lessee.CodeInvalidLesseeID, lessee.ColLesseeID, id, err)
	}
	return norm, nil
}

// onBehalfOfField checks an optional on_behalf_of: "" gives "", anything
// else must be an organisation number.
func onBehalfOfField(obo lessee.Cell) (string, *lessee.Problem) {
	if obo.Value == "" {
		return "", nil
	}
	norm := ident.NormaliseID(obo.Value)
	if err := ident.OrgNr(norm); err != nil {
		if obo.Kind == lessee.CellNumber {
			return "", problem(lessee.CodeInvalidOnBehalfOf, lessee.ColOnBehalfOf, message.ExcelNumber)
		}
		inner, ok := message.TextOf(err)
		if !ok {
			return "", &lessee.Problem{Code: lessee.CodeInvalidOnBehalfOf, Message: lessee.ColOnBehalfOf.String() + ": " + err.Error()}
		}
		return "", problem(lessee.CodeInvalidOnBehalfOf, lessee.ColOnBehalfOf, message.OnBehalfOfNotOrgNr, inner)
	}
	return norm, nil
}

// textFields checks the lengths of reference and lessee_name and returns
// them.
func textFields(c [lessee.NumColumns]lessee.Cell) (reference, lesseeName string, _ *lessee.Problem) {
	for _, col := range []lessee.Column{lessee.ColReference, lessee.ColLesseeName} {
		if n := utf8.RuneCountInString(c[col].Value); n > MaxTextLen {
			return "", "", problem(lessee.CodeFieldTooLong, col, message.FieldTooLong, n, MaxTextLen)
		}
	}
	return c[lessee.ColReference].Value, c[lessee.ColLesseeName].Value, nil
}

// dateCell parses an optional date cell; "" gives the zero date.
func dateCell(col lessee.Column, cell lessee.Cell) (lessee.Date, *lessee.Problem) {
	if cell.Value == "" {
		return "", nil
	}
	d, err := ParseDate(cell.Value)
	if err != nil {
		if cell.Kind == lessee.CellNumber {
			return "", problem(lessee.CodeInvalidDate, col, message.ExcelDate)
		}
		return "", errProblem(lessee.CodeInvalidDate, col, err)
	}
	return d, nil
}

// Dates outside these years are taken for typing errors.
const (
	minYear = 1900
	maxYear = 2199
)

// errDateFormat is ParseDate's error for what is no date at all.
var errDateFormat = message.Errorf(message.DateFormat)

// ParseDate parses a civil date written YYYY-MM-DD, DD.MM.YYYY or D.M.YYYY
// (the day and month of the dotted form may have one or two digits), after
// trimming spaces. The date must exist in the calendar and lie in the years
// 1900–2199. Nothing else is guessed at: no two-digit years, no slashes, no
// times, no Excel serial numbers. An error's message is English; message.TextOf
// gives it for writing in another language.
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
		return "", message.Errorf(message.DateYear, y, minYear, maxYear)
	}
	if m < 1 || m > 12 {
		return "", message.Errorf(message.DateMonth, m)
	}
	if d < 1 || d > daysIn(y, m) {
		return "", message.Errorf(message.DateDay, d, fmt.Sprintf("%04d-%02d", y, m))
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
