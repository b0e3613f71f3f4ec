package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// aliases lists the accepted header names of each canonical column, canonical
// name first. Matching ignores case, accents, spaces, dashes, dots and
// underscores, so "Reg. nr", "reg_nr" and "REGNR" are one name.
var aliases = [lessee.NumColumns][]string{
	lessee.ColOperation:          {"operation", "operasjon", "handling", "action"},
	lessee.ColRegistrationNumber: {"registration_number", "kjennemerke", "regnr", "registreringsnummer", "reg_nr", "registration", "registreringsnr"},
	lessee.ColVIN:                {"vin", "understellsnummer", "chassisnummer", "understellsnr", "chassisnr"},
	lessee.ColLesseeID:           {"lessee_id", "leietaker", "leasingtaker", "leasingtakerid", "leietaker_id", "lessee"},
	lessee.ColLesseeName:         {"lessee_name", "etternavn", "navn", "name", "leietaker_navn", "leasingtaker_navn"},
	lessee.ColStartDate:          {"start_date", "fra_dato", "fradato", "startdato", "from_date", "start"},
	lessee.ColEndDate:            {"end_date", "til_dato", "tildato", "sluttdato", "to_date", "end"},
	lessee.ColOnBehalfOf:         {"on_behalf_of", "paa_vegne_av", "pa_vegne_av", "fleet_owner", "flateeier"},
	lessee.ColReference:          {"reference", "referanse", "ref", "external_id"},
}

// ColumnNamed returns the canonical column a name means, by the same
// aliases and folding as a file's header (the single-change API's JSON keys
// use it), or false.
func ColumnNamed(name string) (lessee.Column, bool) { return columnFor(name) }

// columnFor returns the canonical column a header name means, or false. The
// alias table is small, so a linear search keeps it free of package state.
func columnFor(name string) (lessee.Column, bool) {
	k := headerKey(name)
	if k == "" {
		return 0, false
	}
	for c, names := range aliases {
		for _, a := range names {
			if headerKey(a) == k {
				return lessee.Column(c), true
			}
		}
	}
	return 0, false
}

// headerKey folds a header name to the form aliases are compared in: lower
// case, Norwegian letters spelled out in ASCII (å->a, ø->o, æ->ae), other
// accents dropped, and separators removed.
func headerKey(name string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(strings.TrimSpace(name))) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == 'ø':
			b.WriteByte('o')
		case r == 'æ':
			b.WriteString("ae")
		case r == 'œ':
			b.WriteString("oe")
		case r == 'ß':
			b.WriteString("ss")
		case unicode.Is(unicode.Mn, r):
			// combining accent left by NFD: é -> e, å -> a
		case r == ' ', r == '-', r == '_', r == '.', unicode.IsSpace(r):
			// separators: "fra dato", "fra-dato", "fra_dato" are one name
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// header is a mapped header row.
type header struct {
	line  int
	names []string        // as written, trimmed; one per column of the file
	col   []lessee.Column // per file column; -1 if ignored
	info  Info
}

// mapHeader maps the cells of the header row. cells has its trailing empty
// cells removed already.
func mapHeader(cells []string, line int, limits Limits) (*header, error) {
	if len(cells) > limits.MaxColumns {
		return nil, refuse(lessee.CodeTooManyColumns, line,
			message.HeaderColumns, line, len(cells), limits.MaxColumns)
	}
	h := &header{line: line, names: make([]string, len(cells)), col: make([]lessee.Column, len(cells))}
	h.info.HeaderLine = line
	h.info.Header = make([]string, len(cells))
	for i, c := range cells {
		h.info.Header[i] = maskDigits(c)
	}
	found := 0
	for i, raw := range cells {
		name := strings.TrimSpace(raw)
		h.names[i] = name
		h.col[i] = -1
		if len(raw) > limits.MaxCellBytes {
			// The name itself is too long to quote: name the position.
			return nil, cellTooLarge(line, fmt.Sprintf("%d", i+1), len(raw), limits)
		}
		c, ok := columnFor(name)
		if ok && limits.Snapshot && (c == lessee.ColOperation || c == lessee.ColEndDate) {
			// A snapshot states the lessee, not what to do with it.
			ok = false
		}
		if !ok {
			if name != "" {
				h.info.IgnoredColumns = append(h.info.IgnoredColumns, maskDigits(name))
			}
			continue
		}
		if prev := h.info.Columns[c]; prev != "" {
			return nil, refuse(lessee.CodeDuplicateColumn, line,
				message.DuplicateColumn, line, strconv.Quote(maskDigits(prev)), strconv.Quote(maskDigits(name)), c)
		}
		h.info.Columns[c] = name
		h.col[i] = c
		found++
	}
	if found == 0 {
		return nil, refuse(lessee.CodeMissingHeader, line,
			message.NotAHeader, line, strings.Join([]string{
				lessee.ColOperation.String(), lessee.ColRegistrationNumber.String(), lessee.ColVIN.String(),
				lessee.ColLesseeID.String(), lessee.ColStartDate.String(),
			}, ";"))
	}
	var missing message.List
	quote := func(c lessee.Column) string { return strconv.Quote(c.String()) }
	if h.info.Columns[lessee.ColOperation] == "" && !limits.Snapshot {
		missing = append(missing, message.New(message.MissingOperationColumn,
			quote(lessee.ColOperation), strings.Join(aliases[lessee.ColOperation], ", ")))
	}
	if h.info.Columns[lessee.ColRegistrationNumber] == "" && h.info.Columns[lessee.ColVIN] == "" {
		missing = append(missing, message.New(message.MissingVehicleColumn,
			quote(lessee.ColRegistrationNumber), quote(lessee.ColVIN),
			strings.Join(aliases[lessee.ColRegistrationNumber], ", "),
			strings.Join(aliases[lessee.ColVIN], ", ")))
	}
	if limits.Snapshot && h.info.Columns[lessee.ColLesseeID] == "" {
		// Without it every row would ask for no lessee: a snapshot that
		// removes the fleet's lessees by mistake.
		missing = append(missing, message.New(message.MissingLesseeIDColumn,
			quote(lessee.ColLesseeID), strings.Join(aliases[lessee.ColLesseeID], ", ")))
	}
	if len(missing) > 0 {
		return nil, refuse(lessee.CodeMissingColumn, line, message.HeaderLacks, line, missing)
	}
	return h, nil
}

// columnName names file column i for a message: its header name (masked) or,
// past the header, its position.
func (h *header) columnName(i int) string {
	if h != nil && i < len(h.names) && h.names[i] != "" {
		return fmt.Sprintf("%q", maskDigits(h.names[i]))
	}
	return fmt.Sprintf("%d", i+1)
}

func cellTooLarge(line int, col string, size int, limits Limits) *lessee.Error {
	return refuse(lessee.CodeCellTooLarge, line,
		message.CellBytes, line, col, size, limits.MaxCellBytes)
}

// trimTrailing drops trailing cells that are empty after trimming spaces:
// spreadsheets pad rows to the used range.
func trimTrailing(cells []string) []string {
	n := len(cells)
	for n > 0 && strings.TrimSpace(cells[n-1]) == "" {
		n--
	}
	return cells[:n]
}

// maskDigits hides the personal part of anything that looks like an 11-digit
// identity number: a file without a header row puts data where column names
// belong, and column names reach receipts and logs.
func maskDigits(s string) string {
	b := []byte(s)
	run := 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			run++
			continue
		}
		if run >= 11 {
			for j := i - run + 6; j < i; j++ {
				b[j] = '*'
			}
		}
		run = 0
	}
	return string(b)
}
