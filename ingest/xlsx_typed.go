package ingest

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
)

// This file types XLSX cells: a raw value and its cell type become the
// value and lessee.CellKind validate gets, dates told from numbers by the
// cell's number format (1900 and 1904 date systems).

// typed turns a raw cell value into the value and kind validate gets.
func (t *xlsxTable) typed(raw string, ct cellType) (string, lessee.CellKind) {
	switch ct.t {
	case "s", "inlineStr", "str", "e":
		return raw, lessee.CellText
	case "b":
		switch raw {
		case "1":
			return "TRUE", lessee.CellText
		case "0":
			return "FALSE", lessee.CellText
		}
		return raw, lessee.CellText
	case "d": // an ISO 8601 date cell, rare outside Strict OOXML
		d, _, _ := strings.Cut(strings.TrimSpace(raw), "T")
		if _, err := time.Parse(time.DateOnly, d); err == nil {
			return d, lessee.CellDate
		}
		return raw, lessee.CellText
	case "", "n":
		if !ct.known {
			return raw, lessee.CellText
		}
		if t.dateStyle(ct.s) {
			if d, ok := serialDate(raw, t.date1904); ok {
				return d, lessee.CellDate
			}
		}
		return raw, lessee.CellNumber
	}
	return raw, lessee.CellText
}

// dateStyle reports whether cell style s formats numbers as dates.
func (t *xlsxTable) dateStyle(s int) bool {
	if d, ok := t.isDate[s]; ok {
		return d
	}
	d := false
	st := t.f.Styles
	if st != nil && st.CellXfs != nil && s >= 0 && s < len(st.CellXfs.Xf) && st.CellXfs.Xf[s].NumFmtID != nil {
		id := *st.CellXfs.Xf[s].NumFmtID
		d = builtinDateFormat(id)
		if st.NumFmts != nil {
			for _, nf := range st.NumFmts.NumFmt {
				if nf != nil && nf.NumFmtID == id {
					d = dateFormatCode(nf.FormatCode)
				}
			}
		}
	}
	if len(t.isDate) < 1<<16 { // a hostile styles part cannot grow this forever
		t.isDate[s] = d
	}
	return d
}

// builtinDateFormat reports the built-in number formats that show a date:
// 14-17 and 22 everywhere, 27-36 and 50-58 in East Asian locales. Time-only
// formats (18-21, 45-47) are numbers here.
func builtinDateFormat(id int) bool {
	return id >= 14 && id <= 17 || id == 22 || id >= 27 && id <= 36 || id >= 50 && id <= 58
}

// dateFormatCode reports whether a custom number format shows a date: its
// first section, without literals, escapes and bracketed parts, holds a day
// or year, or a month without hours or seconds ("mm" alone is ambiguous
// with minutes only next to them).
func dateFormatCode(code string) bool {
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case inQuote:
			inQuote = c != '"'
		case c == '"':
			inQuote = true
		case c == '[':
			end := strings.IndexByte(code[i:], ']')
			if end < 0 {
				end = len(code) - i
			}
			// [h], [mm], [ss] are elapsed time and count as time; colours,
			// conditions and locales ([Red], [<0], [$-414]) say nothing.
			if in := strings.ToLower(code[i+1 : i+end]); in != "" && strings.Trim(in, "hms") == "" {
				b.WriteString(in)
			}
			i += end
		case c == '\\', c == '_', c == '*':
			i++ // the next character is literal or padding
		case c == ';':
			i = len(code) // first section only
		default:
			b.WriteByte(c | 0x20) // ASCII lower case; others do not matter
		}
	}
	s := b.String()
	if strings.ContainsAny(s, "yd") {
		return true
	}
	return strings.Contains(s, "m") && !strings.ContainsAny(s, "hs")
}

// serialDate converts an Excel date serial to YYYY-MM-DD, ignoring the time
// of day (rounded to the second first, as Excel displays it).
func serialDate(raw string, date1904 bool) (string, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 2958465 { // 9999-12-31
		return "", false
	}
	days := int(math.Floor(v + 0.5/86400))
	var d time.Time
	switch {
	case date1904:
		d = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	case days >= 61:
		d = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	case days >= 1 && days < 60:
		// Excel counts a 29 February 1900 that never was; before it the
		// epoch is one day later.
		d = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	default:
		return "", false // 0 and the phantom 1900-02-29
	}
	return d.Format(time.DateOnly), true
}
