package message

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// placeholders returns the argument numbers (1-based) that format writes,
// resolving fmt's implicit and explicit ([n]) indexes, or an error for a
// verb other than %s.
func placeholders(format string) ([]int, error) {
	var used []int
	next := 1
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i >= len(format) {
			return nil, errors.New("ends in %")
		}
		if format[i] == '%' {
			continue
		}
		if format[i] == '[' {
			end := strings.IndexByte(format[i:], ']')
			if end < 0 {
				return nil, errors.New("unclosed [")
			}
			n, err := strconv.Atoi(format[i+1 : i+end])
			if err != nil {
				return nil, err
			}
			next = n
			i += end + 1
		}
		if i >= len(format) || format[i] != 's' {
			return nil, errors.New("a verb other than %s")
		}
		used = append(used, next)
		next++
	}
	slices.Sort(used)
	return slices.Compact(used), nil
}

// TestCatalogue holds every message to the catalogue's rules: both
// languages written, not the same text, and taking the same arguments.
func TestCatalogue(t *testing.T) {
	for key, e := range catalogue {
		if e.en == "" || e.nb == "" {
			t.Errorf("%s: a language is missing: en %q, nb %q", key, e.en, e.nb)
			continue
		}
		if e.en == e.nb {
			t.Errorf("%s: the Norwegian is the English: %q", key, e.en)
		}
		en, err := placeholders(e.en)
		if err != nil {
			t.Errorf("%s: en %q: %v", key, e.en, err)
			continue
		}
		nb, err := placeholders(e.nb)
		if err != nil {
			t.Errorf("%s: nb %q: %v", key, e.nb, err)
			continue
		}
		if !slices.Equal(en, nb) {
			t.Errorf("%s: the languages disagree in their placeholders: en %v %q, nb %v %q", key, en, e.en, nb, e.nb)
		}
		for i, n := range en {
			if n != i+1 {
				t.Errorf("%s: argument %d is never written", key, i+1)
				break
			}
		}
	}
}

// TestEveryCodeHasMessage: a receipt or answer with any code can say why
// in either language.
func TestEveryCodeHasMessage(t *testing.T) {
	has := map[lessee.Code]bool{}
	for _, e := range catalogue {
		if e.en != "" && e.nb != "" {
			has[e.code] = true
		}
	}
	for _, c := range lessee.Codes() {
		if !has[c] {
			t.Errorf("code %s has no message in both languages", c)
		}
	}
}

// TestIdent: every rule of package ident has a message, and its English is
// word for word ident's own.
func TestIdent(t *testing.T) {
	for _, r := range ident.Reasons() {
		if _, ok := catalogue[identKey(r)]; !ok {
			t.Errorf("ident reason %q has no message", r)
		}
	}
	errs := []error{
		ident.OrgNr(""), ident.OrgNr("1.2E+08"), ident.OrgNr("12345678x"), ident.OrgNr("1234 5678"),
		ident.OrgNr("12345"), ident.OrgNr("123456789"),
	}
	for _, s := range []string{"1234567890", "12345", "01017000000", "01417012345", "010170123"} {
		_, err := ident.LesseeID(s, false)
		errs = append(errs, err)
	}
	for _, s := range []string{"0101700000", "12345678901234", "01017012345", "31027012345"} {
		_, err := ident.PersonID(s, false)
		errs = append(errs, err)
	}
	for _, s := range []string{"", "AB_123", "ABCDEFGH1"} {
		_, err := ident.NormaliseRegNumber(s)
		errs = append(errs, err)
	}
	for _, s := range []string{"", "WVWZZZ1JZXW00000I", "WVWZZZ1JZXW0000_1", "WVWZZZ1JZXW"} {
		_, err := ident.VIN(s)
		errs = append(errs, err)
	}
	seen := map[ident.Reason]bool{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		r, _, _ := ident.Explain(err)
		seen[r] = true
		text, ok := TextOf(err)
		if !ok {
			t.Errorf("%v: no Text", err)
			continue
		}
		if got := Render(lessee.English, text); got != err.Error() {
			t.Errorf("%s: English %q, ident says %q", r, got, err.Error())
		}
		if nb := Render(lessee.Norwegian, text); nb == err.Error() {
			t.Errorf("%s: Norwegian %q is the English", r, nb)
		}
	}
	if len(seen) < 10 {
		t.Errorf("the samples cover only %d reasons: %v", len(seen), seen)
	}
}

func TestRender(t *testing.T) {
	tx := Field(lessee.ColVIN, HeaderLacks, 1, List{New(MissingOperationColumn, `"operation"`, "a, b"), New(KindPDF)})
	if got, want := Render(lessee.Norwegian, tx),
		`vin: rad 1: overskriftsraden mangler kolonnen "operation" (godtatte navn: a, b) og et PDF-dokument`; got != want {
		t.Errorf("nb: %q, want %q", got, want)
	}
	if got, want := Render("", tx),
		`vin: row 1: the header lacks column "operation" (accepted names: a, b) and a PDF document`; got != want {
		t.Errorf("default: %q, want %q", got, want)
	}
	if got, want := Format(lessee.Norwegian, Replaced, "2026-01-01"),
		"leasingtaker byttet fra 2026-01-01: den forrige leasingtakerens periode slutter 2026-01-01, og denne leasingtakerens periode begynner, uten sluttdato"; got != want {
		t.Errorf("indexed: %q, want %q", got, want)
	}
}
