package validate

import (
	"testing"

	"github.com/fleetreg/lessee"
)

// TestLanguage: messages are written in the job's language, and Decide
// writes a row's own Problem in its job's language whatever language
// ParseRow wrote it in (the API parses before it has read the
// organisation's language with the change's state); the code is the same.
func TestLanguage(t *testing.T) {
	t.Parallel()
	nb := testJob()
	nb.Language = lessee.Norwegian
	en := testJob() // the zero Language writes English
	c := cells{lessee.ColOperation: "add", lessee.ColVIN: "WVWZZZ1KZAW00000O", lessee.ColLesseeID: "15038512363",
		lessee.ColStartDate: "2026-01-01", lessee.ColOnBehalfOf: "12345678"}
	const (
		wantEN = "vin: letter O at position 17 is never used in a VIN (no I, O or Q); did you mean 0?"
		wantNB = "vin: bokstaven O i posisjon 17 brukes aldri i et understellsnummer (ingen I, O eller Q); mente du 0?"
	)
	if p := ParseRow(Config{}, nb, raw(0, c)).Problem; p == nil || p.Code != lessee.CodeInvalidVIN || p.Message != wantNB {
		t.Errorf("ParseRow nb: %+v, want %q", p, wantNB)
	}
	row := ParseRow(Config{}, en, raw(0, c))
	if p := row.Problem; p == nil || p.Message != wantEN {
		t.Errorf("ParseRow en: %+v, want %q", p, wantEN)
	}
	if o := Decide(Config{}, nb, nil, []lessee.Row{row}).Outcomes[0]; o.Code != lessee.CodeInvalidVIN || o.Message != wantNB {
		t.Errorf("Decide nb of a row parsed in en: %s %q, want %q", o.Code, o.Message, wantNB)
	}

	// A message wrapping an ident error writes both in the language.
	c[lessee.ColVIN] = "WVWZZZ1KZAW000001"
	const obo = "on_behalf_of: må være flåteeierens organisasjonsnummer: må ha 9 sifre, men har 8"
	if p := ParseRow(Config{}, nb, raw(0, c)).Problem; p == nil || p.Code != lessee.CodeInvalidOnBehalfOf || p.Message != obo {
		t.Errorf("ParseRow nb on_behalf_of: %+v, want %q", p, obo)
	}

	// Decide's own checks, with a masked identity number nowhere in sight.
	delete(c, lessee.ColOnBehalfOf)
	rows := []lessee.Row{ParseRow(Config{}, nb, raw(0, c))}
	if o := Decide(Config{}, nb, nil, rows).Outcomes[0]; o.Code != lessee.CodeTermsNotAccepted ||
		o.Message != "innsenderen har ikke godtatt avtalen om leasingtaker-API; godta den før dere endrer leasingtakere på egne kjøretøy" {
		t.Errorf("Decide nb: %s %q", o.Code, o.Message)
	}
}
