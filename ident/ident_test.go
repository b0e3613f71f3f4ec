package ident

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// personNumber builds an 11-digit number from a six-digit date part and the
// first individual number in [lo, hi] for which both check digits exist.
func personNumber(tb testing.TB, date6 string, lo, hi int) string {
	tb.Helper()
	for ind := lo; ind <= hi; ind++ {
		p := fmt.Sprintf("%s%03d", date6, ind)
		k1 := mod11(p, k1Weights)
		if k1 < 0 {
			continue
		}
		p += fmt.Sprint(k1)
		k2 := mod11(p, k2Weights)
		if k2 < 0 {
			continue
		}
		return p + fmt.Sprint(k2)
	}
	tb.Fatalf("no valid individual number for %s in %d..%d", date6, lo, hi)
	return ""
}

// orgNumber completes an 8-digit prefix with its check digit.
func orgNumber(tb testing.TB, prefix string) string {
	tb.Helper()
	c := mod11(prefix, orgWeights)
	if c < 0 {
		tb.Fatalf("prefix %s has no valid check digit", prefix)
	}
	return prefix + fmt.Sprint(c)
}

// breakCheck changes the last digit so the check digits no longer match.
func breakCheck(s string) string {
	last := s[len(s)-1]
	return s[:len(s)-1] + string('0'+(last-'0'+1)%10)
}

func TestOrgNr(t *testing.T) {
	t.Parallel()
	// A prefix whose remainder is 1 has no valid check digit at all.
	var noCheck string
	for p := 80000000; noCheck == ""; p++ {
		if s := fmt.Sprint(p); mod11(s, orgWeights) < 0 {
			noCheck = s
		}
	}
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"OK", "923609016", nil},
		{"OKBrreg", "974760673", nil},
		{"OKGenerated", orgNumber(t, "91234568"), nil},
		{"OKCheckZero", zeroCheckOrg(t), nil},
		{"OKSurroundingSpace", " 923609016\t", nil},
		{"ErrCheckDigit", "923609017", ErrCheckDigit},
		{"ErrCheckDigitRemainderOne", noCheck + "0", ErrCheckDigit},
		{"ErrLength8", "92360901", ErrLength},
		{"ErrLength10", "9236090160", ErrLength},
		{"ErrGroupedSpaces", "923 609 016", ErrNotDigits},
		{"ErrLetters", "92360901A", ErrNotDigits},
		{"ErrScientific", "9.23609E+08", ErrScientific},
		{"ErrEmpty", "  ", ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := OrgNr(tt.in)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("OrgNr(%q) = %v, want %v", tt.in, err, tt.err)
			}
		})
	}
	t.Run("MessageLength", func(t *testing.T) {
		t.Parallel()
		if err := OrgNr("92360901"); err == nil || err.Error() != "must be 9 digits, got 8" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("MessageCheckDigit", func(t *testing.T) {
		t.Parallel()
		if err := OrgNr("923609017"); err == nil || !strings.HasPrefix(err.Error(), "check digit does not match") {
			t.Fatalf("got %v", err)
		}
	})
}

func zeroCheckOrg(tb testing.TB) string {
	tb.Helper()
	for p := 91000000; ; p++ {
		if s := fmt.Sprint(p); mod11(s, orgWeights) == 0 {
			return s + "0"
		}
	}
}

func TestLesseeID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		synthetic bool
		kind      Kind
		err       error
	}{
		// Cross-checked against an independent implementation.
		{"OKPersonKnown", "01019012480", false, KindPerson, nil},
		{"OKDNumberKnown", "41019012393", false, KindDNumber, nil},
		{"OKLeap2000Known", "29020050088", false, KindPerson, nil},
		{"OK1880Known", "05058050085", false, KindPerson, nil},
		{"OKEnterprise", "923609016", false, KindEnterprise, nil},
		{"OKPerson", personNumber(t, "150785", 0, 499), false, KindPerson, nil},
		{"OKLeadingZeroDay", personNumber(t, "070503", 500, 999), false, KindPerson, nil},
		{"OKSurroundingSpace", "  " + personNumber(t, "010190", 0, 499) + " ", false, KindPerson, nil},
		{"OKDNumber", personNumber(t, "710785", 0, 499), false, KindDNumber, nil},
		{"OKDNumberFirstDay", personNumber(t, "410785", 0, 499), false, KindDNumber, nil},
		{"OKLeap1996", personNumber(t, "290296", 0, 499), false, KindPerson, nil},
		{"OKLeap1856", personNumber(t, "290256", 500, 749), false, KindPerson, nil},
		{"OKLeap1960From900", personNumber(t, "290260", 900, 999), false, KindPerson, nil},
		{"OKLeap2000DNumber", personNumber(t, "690200", 500, 999), false, KindDNumber, nil},
		{"OKSynthetic40", personNumber(t, "014190", 0, 499), true, KindPerson, nil},
		{"OKSynthetic80", personNumber(t, "018190", 0, 499), true, KindPerson, nil},
		{"OKSyntheticDNumber", personNumber(t, "418190", 0, 499), true, KindDNumber, nil},
		{"OKPlainWhenSyntheticAllowed", personNumber(t, "010190", 0, 499), true, KindPerson, nil},

		{"ErrSynthetic40", personNumber(t, "014190", 0, 499), false, KindUnknown, ErrSynthetic},
		{"ErrSynthetic80", personNumber(t, "018190", 0, 499), false, KindUnknown, ErrSynthetic},
		{"ErrSyntheticBadMonth", personNumber(t, "015390", 0, 499), true, KindUnknown, ErrDate},
		{"ErrFeb29In1900", personNumber(t, "290200", 0, 499), false, KindUnknown, ErrDate},
		{"ErrFeb29In1997", personNumber(t, "290297", 0, 499), false, KindUnknown, ErrDate},
		{"ErrFeb29In1900HighIndividual", personNumber(t, "290200", 100, 499), false, KindUnknown, ErrDate},
		{"ErrFeb30", personNumber(t, "300296", 0, 499), false, KindUnknown, ErrDate},
		{"ErrApril31", personNumber(t, "310490", 0, 499), false, KindUnknown, ErrDate},
		{"ErrMonth13", personNumber(t, "011390", 0, 499), false, KindUnknown, ErrDate},
		{"ErrMonth0", personNumber(t, "010090", 0, 499), false, KindUnknown, ErrDate},
		{"ErrDay0", personNumber(t, "000190", 0, 499), false, KindUnknown, ErrDate},
		{"ErrDNumberDay72", personNumber(t, "720190", 0, 499), false, KindUnknown, ErrDate},
		{"ErrFHNumber", personNumber(t, "810190", 0, 499), false, KindUnknown, ErrDate},
		{"ErrNoCenturyRule750", personNumber(t, "010150", 750, 899), false, KindUnknown, ErrDate},
		{"ErrNoCenturyRule500Year45", personNumber(t, "010145", 500, 749), false, KindUnknown, ErrDate},
		{"ErrCheckDigit", breakCheck(personNumber(t, "010190", 0, 499)), false, KindUnknown, ErrCheckDigit},
		{"ErrCheckDigitKnown", "01019012481", false, KindUnknown, ErrCheckDigit},
		{"ErrCheckDigitFirst", "01019012470", false, KindUnknown, ErrCheckDigit},
		{"ErrEnterpriseCheck", "923609017", false, KindUnknown, ErrCheckDigit},
		{"ErrLeadingZeroLost10", "1019012480", false, KindUnknown, ErrLeadingZero},
		{"ErrLeadingZeroLost8", "23609016", false, KindUnknown, ErrLeadingZero},
		{"ErrScientific", "1.01901E+10", false, KindUnknown, ErrScientific},
		{"ErrScientificComma", "1,01901E+10", false, KindUnknown, ErrScientific},
		{"ErrScientificLower", "1.01901e+10", false, KindUnknown, ErrScientific},
		{"ErrNotDigits", "0101901248X", false, KindUnknown, ErrNotDigits},
		{"ErrInternalSpace", "010190 12480", false, KindUnknown, ErrNotDigits},
		{"ErrDash", "010190-12480", false, KindUnknown, ErrNotDigits},
		{"ErrDecimal", "923609016.0", false, KindUnknown, ErrNotDigits},
		{"ErrLength12", "010190124800", false, KindUnknown, ErrLength},
		{"ErrLength5", "12345", false, KindUnknown, ErrLength},
		{"ErrEmpty", "", false, KindUnknown, ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind, err := LesseeID(tt.in, tt.synthetic)
			if kind != tt.kind || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("LesseeID(%q, %v) = %v, %v; want %v, %v", tt.in, tt.synthetic, kind, err, tt.kind, tt.err)
			}
			if err != nil && len(strings.TrimSpace(tt.in)) >= 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

func TestLesseeIDMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"ErrLeadingZero", "1019012480", "looks like a leading zero was lost; format the column as text"},
		{"ErrScientific", "1.01901E+10", "Excel turned the number into scientific notation; format the column as text"},
		{"ErrNotDigits", "0101901248X", "must contain digits only"},
		{"ErrInternalSpace", "010190 12480", "found a space at position 7"},
		{"ErrCheckDigit", "01019012481", "check digits do not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LesseeID(tt.in, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LesseeID(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestPersonID(t *testing.T) {
	t.Parallel()
	t.Run("ErrEnterprise", func(t *testing.T) {
		t.Parallel()
		if _, err := PersonID("923609016", false); !errors.Is(err, ErrLength) {
			t.Fatalf("got %v, want ErrLength", err)
		}
	})
	t.Run("ErrLeadingZero", func(t *testing.T) {
		t.Parallel()
		if _, err := PersonID("1019012480", false); !errors.Is(err, ErrLeadingZero) {
			t.Fatalf("got %v, want ErrLeadingZero", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		if k, err := PersonID("01019012480", false); err != nil || k != KindPerson {
			t.Fatalf("got %v, %v", k, err)
		}
	})
}

func TestNormaliseID(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{" 010190 12480 ", "01019012480"},
		{"923 609 016", "923609016"},
		{"01019012480", "01019012480"},
		{"010190  12480", "010190  12480"},
		{"0101 9012480", "0101 9012480"},
		{"923 609016", "923 609016"},
		{"010190-12480", "010190-12480"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormaliseID(tt.in); got != tt.want {
			t.Errorf("NormaliseID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormaliseRegNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"OK", "AB12345", "AB12345", nil},
		{"OKLowerWithSpace", " ab 12345 ", "AB12345", nil},
		{"OKDash", "ab-12345", "AB12345", nil},
		{"OKEnDash", "AB–12345", "AB12345", nil},
		{"OKNordic", "æøå 123", "ÆØÅ123", nil},
		{"OKPersonalised", "bond007", "BOND007", nil},
		{"OKShortest", "A1", "A1", nil},
		{"ErrTooShort", "A", "", ErrLength},
		{"ErrTooLong", "AB 123456", "", ErrLength},
		{"ErrCharacter", "AB!2345", "", ErrCharacter},
		{"ErrUmlaut", "ÄB12345", "", ErrCharacter},
		{"ErrEmpty", " - ", "", ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormaliseRegNumber(tt.in)
			if got != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("NormaliseRegNumber(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestVIN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		err            error
		msg            string
	}{
		{"OK", "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000001", nil, ""},
		{"OKLowerTrimmed", " wvwzzz1jzxw000001\t", "WVWZZZ1JZXW000001", nil, ""},
		{"ErrShort", "WVWZZZ1JZXW00000", "", ErrLength, "must be 17 characters, got 16"},
		{"ErrLong", "WVWZZZ1JZXW0000012", "", ErrLength, "must be 17 characters, got 18"},
		{"ErrLetterO", "WVWZO1JZXW0000012", "", ErrCharacter, "letter O at position 5"},
		{"ErrLetterI", "IVWZZZ1JZXW000001", "", ErrCharacter, "letter I at position 1"},
		{"ErrLetterQ", "WVWZZZ1JZXW00000q", "", ErrCharacter, "letter Q at position 17"},
		{"ErrDash", "WVWZZZ-JZXW000001", "", ErrCharacter, `character '-' at position 7`},
		{"ErrEmpty", "", "", ErrEmpty, "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := VIN(tt.in)
			if got != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("VIN(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("VIN(%q) error %q does not contain %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"01019012480", "*********80"},
		{"923609016", "923609016"},
		{"923609017", "*******17"},
		{"010190 12480", "**********80"},
		{"abc", "*bc"},
		{"ab", "**"},
		{"a", "*"},
		{"", ""},
		{"ÆØÅ12", "***12"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"lessee 01019012480 rejected", "lessee *********80 rejected"},
		{"01019012480", "*********80"},
		{"a01019012480b", "a*********80b"},
		{"two 01019012480,41019012393.", "two *********80,*********93."},
		{"printed 010190 12480 form", "printed ****** ***80 form"},
		{"twelve 010190124800 digits", "twelve 010190124800 digits"},
		{"ten 1019012480 digits", "ten 1019012480 digits"},
		{"orgnr 923609016", "orgnr 923609016"},
		{"010190 124801", "010190 124801"},
		{"", ""},
		{"æ01019012480ø", "æ*********80ø"},
	}
	for _, tt := range tests {
		if got := MaskText(tt.in); got != tt.want {
			t.Errorf("MaskText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// hasElevenDigitRun reports whether s holds a run of exactly 11 ASCII digits.
func hasElevenDigitRun(s string) bool {
	n := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isDigit(s[i]) {
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

func FuzzLesseeID(f *testing.F) {
	for _, s := range []string{"01019012480", "41019012393", "923609016", "1.01901E+10", "1019012480", " 01019012480 ", "010190 12480", ""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, synthetic bool) {
		kind, err := LesseeID(s, synthetic)
		if (err == nil) == (kind == KindUnknown) {
			t.Fatalf("LesseeID(%q) = %v, %v: kind and error disagree", s, kind, err)
		}
		if err != nil {
			if hasElevenDigitRun(err.Error()) {
				t.Fatalf("error %q carries an 11-digit run", err)
			}
			return
		}
		trimmed := strings.TrimSpace(s)
		switch kind {
		case KindPerson, KindDNumber:
			if len(trimmed) != 11 || !allDigits(trimmed) {
				t.Fatalf("person kind for %q, which is not 11 digits", s)
			}
			m := Mask(trimmed)
			if m[:9] != "*********" || m[9:] != trimmed[9:] {
				t.Fatalf("Mask(%q) = %q", trimmed, m)
			}
			if strings.Contains(MaskText("x"+trimmed+"x"), trimmed) {
				t.Fatalf("MaskText leaves %q visible", trimmed)
			}
		case KindEnterprise:
			if len(trimmed) != 9 || OrgNr(trimmed) != nil {
				t.Fatalf("enterprise kind for %q", s)
			}
		}
	})
}

func FuzzOrgNr(f *testing.F) {
	for _, s := range []string{"923609016", "974760673", "923609017", "92360901", "9.2E+08", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := OrgNr(s)
		d := strings.TrimSpace(s)
		if err == nil {
			if len(d) != 9 || !allDigits(d) {
				t.Fatalf("OrgNr accepted %q", s)
			}
			if c := mod11(d, orgWeights); int(d[8]-'0') != c {
				t.Fatalf("OrgNr accepted %q with wrong check digit", s)
			}
			if k, err := LesseeID(s, false); k != KindEnterprise || err != nil {
				t.Fatalf("LesseeID(%q) = %v, %v; OrgNr accepted it", s, k, err)
			}
		}
	})
}

func FuzzVIN(f *testing.F) {
	for _, s := range []string{"WVWZZZ1JZXW000001", "wvwzzz1jzxw00000o", "", "ÆØÅ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := VIN(s)
		if err != nil {
			if v != "" {
				t.Fatalf("VIN(%q) returned %q with error", s, v)
			}
			return
		}
		if len(v) != 17 || strings.ContainsAny(v, "IOQ") {
			t.Fatalf("VIN(%q) = %q", s, v)
		}
		for i := 0; i < len(v); i++ {
			if !(isDigit(v[i]) || v[i] >= 'A' && v[i] <= 'Z') {
				t.Fatalf("VIN(%q) = %q", s, v)
			}
		}
		if again, err := VIN(v); err != nil || again != v {
			t.Fatalf("VIN not idempotent on %q: %q, %v", v, again, err)
		}
	})
}

func FuzzRegNumber(f *testing.F) {
	for _, s := range []string{"AB 12345", "ab-12345", "æøå12", "A", "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := NormaliseRegNumber(s)
		if err != nil {
			if r != "" {
				t.Fatalf("NormaliseRegNumber(%q) returned %q with error", s, r)
			}
			return
		}
		n := 0
		for _, c := range r {
			n++
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == 'Æ' || c == 'Ø' || c == 'Å') {
				t.Fatalf("NormaliseRegNumber(%q) = %q", s, r)
			}
		}
		if n < 2 || n > 7 {
			t.Fatalf("NormaliseRegNumber(%q) = %q: length %d", s, r, n)
		}
		if again, err := NormaliseRegNumber(r); err != nil || again != r {
			t.Fatalf("not idempotent on %q: %q, %v", r, again, err)
		}
	})
}

func FuzzMaskText(f *testing.F) {
	for _, s := range []string{"lessee 01019012480", "010190 12480", "123456789012", "a1b2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := MaskText(s)
		if hasElevenDigitRun(out) {
			t.Fatalf("MaskText(%q) = %q carries an 11-digit run", s, out)
		}
		if len(out) != len(s) {
			t.Fatalf("MaskText(%q) = %q changed the length", s, out)
		}
		// Only numbers are masked: an 11-digit run, the printed form (space,
		// '+' or %20 between the parts) or an 11-digit run after a URL escape.
		if !hasElevenDigitRun(s) && !strings.ContainsAny(s, " +%") && out != s {
			t.Fatalf("MaskText(%q) = %q changed text without an 11-digit run", s, out)
		}
	})
}

func TestMaskTextURLEncodedPrintedForm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"COPY inbox/x/121288%2022249.csv": "COPY inbox/x/******%20***49.csv",
		"key=121288+22249":                "key=****** ***49",
		"lessee%20121288%2022249.csv":     "lessee%20******%20***49.csv",
		"a%2012128822249":                 "a%20*********49",
	} {
		if got := MaskText(in); got != want {
			t.Errorf("MaskText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	if got, ok := CompleteOrgNr("92360901"); !ok || got != "923609016" {
		t.Errorf("CompleteOrgNr = %q, %v; want 923609016", got, ok)
	}
	if got, ok := CompletePersonID("121288222"); !ok || got != "12128822249" {
		t.Errorf("CompletePersonID = %q, %v; want 12128822249", got, ok)
	}
	for _, bad := range []string{"", "1234567", "12345678x", "123456789"} {
		if _, ok := CompleteOrgNr(bad); ok {
			t.Errorf("CompleteOrgNr(%q) succeeded", bad)
		}
	}
	// Every completed number passes the checker, and none is accepted
	// that the checker refuses.
	for i := 10000000; i < 10000500; i++ {
		n := strconv.Itoa(i)
		if org, ok := CompleteOrgNr(n); ok && OrgNr(org) != nil {
			t.Errorf("CompleteOrgNr(%s) = %s fails OrgNr", n, org)
		}
	}
}
