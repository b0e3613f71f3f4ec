package ingest

import (
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
)

func TestColumnFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want lessee.Column
		ok   bool
	}{
		{"operation", lessee.ColOperation, true},
		{"  OPERASJON ", lessee.ColOperation, true},
		{"Handling", lessee.ColOperation, true},
		{"Kjennemerke", lessee.ColRegistrationNumber, true},
		{"Reg. nr", lessee.ColRegistrationNumber, true},
		{"reg-nr", lessee.ColRegistrationNumber, true},
		{"Registration Number", lessee.ColRegistrationNumber, true},
		{"Understellsnummer", lessee.ColVIN, true},
		{"VIN", lessee.ColVIN, true},
		{"leasingtakerId", lessee.ColLesseeID, true},
		{"Leietaker ID", lessee.ColLesseeID, true},
		{"Leietaker-navn", lessee.ColLesseeName, true},
		{"Fra dato", lessee.ColStartDate, true},
		{"Fradato", lessee.ColStartDate, true},
		{"Til_dato", lessee.ColEndDate, true},
		{"På vegne av", lessee.ColOnBehalfOf, true},
		{"Paa vegne av", lessee.ColOnBehalfOf, true},
		{"Flåteeier", lessee.ColOnBehalfOf, true},
		{"FLÅTEEIER", lessee.ColOnBehalfOf, true},
		{"Référence", lessee.ColReference, true},
		{"external-id", lessee.ColReference, true},
		{"Kommentar", 0, false},
		{"", 0, false},
		{" - ", 0, false},
	}
	for _, tt := range tests {
		got, ok := columnFor(tt.name)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("columnFor(%q) = %s %v, want %s %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAliasesDistinct(t *testing.T) {
	t.Parallel()
	// Two columns sharing an alias key would make the mapping depend on
	// table order.
	seen := map[string]lessee.Column{}
	for c, names := range aliases {
		if names[0] != lessee.Column(c).String() {
			t.Errorf("aliases of %s do not start with the canonical name", lessee.Column(c))
		}
		for _, a := range names {
			k := headerKey(a)
			if prev, ok := seen[k]; ok && prev != lessee.Column(c) {
				t.Errorf("alias %q of %s collides with %s", a, lessee.Column(c), prev)
			}
			seen[k] = lessee.Column(c)
		}
	}
}

func TestHeaderKey(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Åse Ørn Æble": "aseornaeble",
		"fra_dato":     "fradato",
		"Fra - Dato.":  "fradato",
		"é":            "e",
		"Straße":       "strasse",
	}
	for in, want := range tests {
		if got := headerKey(in); got != want {
			t.Errorf("headerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMapHeader(t *testing.T) {
	t.Parallel()
	limits := DefaultLimits()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		h, err := mapHeader([]string{"Referanse", "Operasjon", "x", "", "VIN"}, 1, limits)
		if err != nil {
			t.Fatal(err)
		}
		wantCol := []lessee.Column{lessee.ColReference, lessee.ColOperation, -1, -1, lessee.ColVIN}
		for i, c := range wantCol {
			if h.col[i] != c {
				t.Errorf("col[%d] = %d, want %d", i, h.col[i], c)
			}
		}
		if strings.Join(h.info.IgnoredColumns, "|") != "x" {
			t.Errorf("ignored = %q; an empty name is not listed", h.info.IgnoredColumns)
		}
	})
	t.Run("ErrDuplicateColumn", func(t *testing.T) {
		t.Parallel()
		_, err := mapHeader([]string{"operation", "Fra dato", "vin", "start"}, 4, limits)
		r := wantRefusal(t, err, lessee.CodeDuplicateColumn, 4)
		if !strings.Contains(r.Message, `"Fra dato" and "start"`) || !strings.Contains(r.Message, "start_date") {
			t.Errorf("message %q", r.Message)
		}
	})
	t.Run("ErrMissingBoth", func(t *testing.T) {
		t.Parallel()
		_, err := mapHeader([]string{"reference"}, 1, limits)
		r := wantRefusal(t, err, lessee.CodeMissingColumn, 1)
		for _, part := range []string{`"operation"`, "operasjon", `"registration_number" or "vin"`, "kjennemerke", "understellsnummer"} {
			if !strings.Contains(r.Message, part) {
				t.Errorf("message %q lacks %q", r.Message, part)
			}
		}
	})
}

func TestMaskDigits(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"01019012345":       "010190*****",
		"fnr 01019012345 x": "fnr 010190***** x",
		"910000001":         "910000001", // an orgnr is not personal
		"123456789012":      "123456******",
		"":                  "",
	}
	for in, want := range tests {
		if got := maskDigits(in); got != want {
			t.Errorf("maskDigits(%q) = %q, want %q", in, got, want)
		}
	}
}
