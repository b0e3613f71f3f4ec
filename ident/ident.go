// Package ident checks and normalises the identifiers a lessee change file
// carries: organisation numbers, Norwegian national identity numbers
// (fødselsnummer) and D-numbers, registration numbers and VINs. It also masks
// personal identity numbers for receipts and logs.
//
// All functions are pure. Error messages describe what is wrong and what to do
// and never repeat the value checked, so they are safe to put in a receipt or a
// log line. Messages start in lower case; callers prefix the field name.
//
// Whitespace: the checkers (OrgNr, PersonID, LesseeID) accept surrounding
// whitespace only, so the value checked is the value stored. NormaliseID
// additionally collapses the two printed forms people copy from letters,
// "DDMMYY IIIKK" and "NNN NNN NNN" (single spaces exactly there), to digits;
// file input goes through NormaliseID first. Dashes and any other spacing are
// refused rather than guessed at.
package ident

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors classify a failure; errors.Is works on every error returned
// by this package. The error text itself is the human message.
var (
	ErrEmpty       = errors.New("empty")
	ErrLength      = errors.New("wrong length")
	ErrNotDigits   = errors.New("not only digits")
	ErrLeadingZero = errors.New("leading zero lost")
	ErrScientific  = errors.New("scientific notation")
	ErrCheckDigit  = errors.New("check digit mismatch")
	ErrDate        = errors.New("not a real date")
	ErrSynthetic   = errors.New("synthetic number not allowed")
	ErrCharacter   = errors.New("character not allowed")
)

// Reason names, more finely than the sentinels, which rule a value broke:
// one Reason per message this package writes, so that a caller can write
// the message in another language (package message does) instead of
// passing the English text on. Explain gives an error's Reason and the
// arguments of its message, in the order the English message uses them.
type Reason string

// The reasons, one per message.
const (
	ReasonEmpty             Reason = "empty"
	ReasonScientific        Reason = "scientific"
	ReasonNotDigits         Reason = "not_digits"       // the character (quoted), its position
	ReasonNotDigitsSpace    Reason = "not_digits_space" // the position
	ReasonOrgNrLength       Reason = "orgnr_length"     // the number of digits
	ReasonOrgNrCheck        Reason = "orgnr_check"
	ReasonLesseeLeadingZero Reason = "lessee_leading_zero" // the number of digits
	ReasonLesseeLength      Reason = "lessee_length"       // the number of digits
	ReasonPersonLeadingZero Reason = "person_leading_zero"
	ReasonPersonLength      Reason = "person_length" // the number of digits
	ReasonPersonCheck       Reason = "person_check"
	ReasonSynthetic         Reason = "synthetic"
	ReasonCentury           Reason = "century"
	ReasonDate              Reason = "date"
	ReasonRegCharacter      Reason = "reg_character" // the character (quoted), its position
	ReasonRegLength         Reason = "reg_length"    // the number of letters and digits
	ReasonVINLetter         Reason = "vin_letter"    // the letter, its position, the digit meant
	ReasonVINCharacter      Reason = "vin_character" // the character (quoted), its position
	ReasonVINLength         Reason = "vin_length"    // the number of characters
)

// Reasons lists every Reason.
func Reasons() []Reason {
	return []Reason{
		ReasonEmpty, ReasonScientific, ReasonNotDigits, ReasonNotDigitsSpace,
		ReasonOrgNrLength, ReasonOrgNrCheck, ReasonLesseeLeadingZero, ReasonLesseeLength,
		ReasonPersonLeadingZero, ReasonPersonLength, ReasonPersonCheck, ReasonSynthetic,
		ReasonCentury, ReasonDate, ReasonRegCharacter, ReasonRegLength,
		ReasonVINLetter, ReasonVINCharacter, ReasonVINLength,
	}
}

// Explain returns the Reason of an error this package returned and the
// arguments of its message; ok is false for any other error.
func Explain(err error) (r Reason, args []any, ok bool) {
	var re *ruleError
	if !errors.As(err, &re) {
		return "", nil, false
	}
	return re.reason, re.args, true
}

// ruleError is a human message that unwraps to one of the sentinels and
// names its Reason.
type ruleError struct {
	kind   error
	reason Reason
	args   []any
	msg    string
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.kind }

// fail returns a ruleError; args are the Reason's arguments, which the
// English format writes with %s.
func fail(kind error, reason Reason, format string, args ...any) error {
	return &ruleError{kind: kind, reason: reason, args: args, msg: fmt.Sprintf(format, args...)}
}

// Kind is what an identity number identifies.
type Kind int

// Identifier kinds. KindUnknown is returned with every error.
const (
	KindUnknown    Kind = iota
	KindEnterprise      // 9-digit organisation number
	KindPerson          // 11-digit fødselsnummer
	KindDNumber         // 11-digit D-number (day + 40)
)

// String returns a lower-case name for the kind.
func (k Kind) String() string {
	switch k {
	case KindEnterprise:
		return "enterprise"
	case KindPerson:
		return "person"
	case KindDNumber:
		return "d-number"
	}
	return "unknown"
}

// Messages for the damage spreadsheets do to identifiers.
const (
	msgLeadingZero = "looks like a leading zero was lost; format the column as text"
	msgScientific  = "Excel turned the number into scientific notation; format the column as text"
)

// NormaliseID trims s and, when what remains is exactly "DDDDDD DDDDD" or
// "DDD DDD DDD" (the printed forms of a fødselsnummer and an orgnr), removes
// those spaces. Anything else is returned trimmed but otherwise unchanged, so
// the checkers can say what is wrong with it.
func NormaliseID(s string) string {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 12:
		if s[6] == ' ' && allDigits(s[:6]) && allDigits(s[7:]) {
			return s[:6] + s[7:]
		}
	case 11:
		if s[3] == ' ' && s[7] == ' ' && allDigits(s[:3]) && allDigits(s[4:7]) && allDigits(s[8:]) {
			return s[:3] + s[4:7] + s[8:]
		}
	}
	return s
}

// checkDigits returns the trimmed s if it is all ASCII digits, or an error that
// recognises the usual ways a spreadsheet damages a number.
func checkDigits(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fail(ErrEmpty, ReasonEmpty, "is empty")
	}
	if strings.Contains(strings.ToUpper(s), "E+") {
		return "", fail(ErrScientific, ReasonScientific, msgScientific)
	}
	for i, r := range []rune(s) {
		if r < '0' || r > '9' {
			if unicode.IsSpace(r) {
				return "", fail(ErrNotDigits, ReasonNotDigitsSpace, "must contain digits only, found a space at position %s", strconv.Itoa(i+1))
			}
			return "", fail(ErrNotDigits, ReasonNotDigits, "must contain digits only, found %s at position %s", strconv.QuoteRune(r), strconv.Itoa(i+1))
		}
	}
	return s, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// CompleteOrgNr appends the check digit to the first 8 digits of an
// organisation number. It reports false when no check digit fits (such
// numbers are never issued) or first8 is not 8 digits.
func CompleteOrgNr(first8 string) (string, bool) {
	if len(first8) != 8 || !allDigits(first8) {
		return "", false
	}
	c := mod11(first8, orgWeights)
	if c < 0 {
		return "", false
	}
	return first8 + string(rune('0'+c)), true
}

// CompletePersonID appends the two check digits to the first 9 digits of
// a fødselsnummer or D-number (date and individual number). It reports
// false when no check digits fit or first9 is not 9 digits; the date part
// is not checked here.
func CompletePersonID(first9 string) (string, bool) {
	if len(first9) != 9 || !allDigits(first9) {
		return "", false
	}
	k1 := mod11(first9, k1Weights)
	if k1 < 0 {
		return "", false
	}
	first10 := first9 + string(rune('0'+k1))
	k2 := mod11(first10, k2Weights)
	if k2 < 0 {
		return "", false
	}
	return first10 + string(rune('0'+k2)), true
}

// mod11 returns the MOD11 check digit of digits under weights, or -1 when the
// remainder makes every check digit invalid.
func mod11(digits string, weights []int) int {
	sum := 0
	for i, w := range weights {
		sum += int(digits[i]-'0') * w
	}
	switch r := sum % 11; r {
	case 0:
		return 0
	case 1:
		return -1
	default:
		return 11 - r
	}
}

var (
	orgWeights = []int{3, 2, 7, 6, 5, 4, 3, 2}
	k1Weights  = []int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	k2Weights  = []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// OrgNr checks a Norwegian organisation number: 9 digits, the last a MOD11
// check digit with weights 3,2,7,6,5,4,3,2. Surrounding whitespace is allowed.
func OrgNr(s string) error {
	d, err := checkDigits(s)
	if err != nil {
		return err
	}
	if len(d) != 9 {
		// No leading-zero hint: organisation numbers never start with 0.
		return fail(ErrLength, ReasonOrgNrLength, "must be 9 digits, got %s", strconv.Itoa(len(d)))
	}
	if c := mod11(d, orgWeights); c < 0 || int(d[8]-'0') != c {
		return fail(ErrCheckDigit, ReasonOrgNrCheck, "check digit does not match; check the organisation number for typing errors")
	}
	return nil
}

// LesseeID checks the identity of a lessee: a 9-digit organisation number
// (KindEnterprise) or an 11-digit fødselsnummer or D-number (see PersonID).
// Surrounding whitespace is allowed; use NormaliseID first to also accept the
// printed forms with spaces.
func LesseeID(s string, allowSynthetic bool) (Kind, error) {
	d, err := checkDigits(s)
	if err != nil {
		return KindUnknown, err
	}
	switch len(d) {
	case 9:
		if err := OrgNr(d); err != nil {
			return KindUnknown, err
		}
		return KindEnterprise, nil
	case 11:
		return PersonID(d, allowSynthetic)
	case 8, 10:
		return KindUnknown, fail(ErrLeadingZero, ReasonLesseeLeadingZero, "has %s digits; "+msgLeadingZero, strconv.Itoa(len(d)))
	}
	return KindUnknown, fail(ErrLength, ReasonLesseeLength,
		"must be 9 digits (organisation number) or 11 digits (national identity number or D-number), got %s", strconv.Itoa(len(d)))
}

// PersonID checks an 11-digit fødselsnummer (KindPerson) or D-number
// (KindDNumber, day + 40): both MOD11 check digits, and DDMMYY a real calendar
// date in the century the individual number (digits 7–9) implies. Synthetic
// test numbers (month + 40 or month + 80) are accepted only when
// allowSynthetic. Surrounding whitespace is allowed.
//
// Not checked: a birth date in the future (that needs a clock), and the 2032
// rules that relax the check digits.
func PersonID(s string, allowSynthetic bool) (Kind, error) {
	d, err := checkDigits(s)
	if err != nil {
		return KindUnknown, err
	}
	if len(d) != 11 {
		if len(d) == 10 {
			return KindUnknown, fail(ErrLeadingZero, ReasonPersonLeadingZero, "must be 11 digits, got 10; "+msgLeadingZero)
		}
		return KindUnknown, fail(ErrLength, ReasonPersonLength, "must be 11 digits, got %s", strconv.Itoa(len(d)))
	}
	k1, k2 := mod11(d, k1Weights), mod11(d, k2Weights)
	if k1 < 0 || int(d[9]-'0') != k1 || k2 < 0 || int(d[10]-'0') != k2 {
		return KindUnknown, fail(ErrCheckDigit, ReasonPersonCheck, "check digits do not match; check the national identity number for typing errors")
	}

	day, month, yy := num2(d[0:2]), num2(d[2:4]), num2(d[4:6])
	individual := int(d[6]-'0')*100 + num2(d[7:9])

	kind := KindPerson
	if day > 40 {
		kind = KindDNumber
		day -= 40
	}
	synthetic := false
	switch {
	case month > 80:
		month -= 80
		synthetic = true
	case month > 40:
		month -= 40
		synthetic = true
	}
	if synthetic && !allowSynthetic {
		return KindUnknown, fail(ErrSynthetic, ReasonSynthetic, "is a synthetic test number, which this registry does not accept")
	}
	year, ok := century(yy, individual)
	if !ok {
		return KindUnknown, fail(ErrDate, ReasonCentury, "individual number does not fit the birth year; check the number for typing errors")
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return KindUnknown, fail(ErrDate, ReasonDate, "the date part is not a real calendar date; check the number for typing errors")
	}
	return kind, nil
}

func num2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

// century returns the full birth year from the two-digit year and the
// individual number, per the Norwegian allocation rules.
func century(yy, individual int) (int, bool) {
	switch {
	case individual <= 499:
		return 1900 + yy, true
	case individual <= 749 && yy >= 54:
		return 1800 + yy, true
	case yy <= 39: // 500–999
		return 2000 + yy, true
	case individual >= 900: // yy 40–99
		return 1900 + yy, true
	}
	return 0, false
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// NormaliseRegNumber upper-cases a registration number and removes spaces and
// dashes. The result must match ^[A-ZÆØÅ0-9]{2,7}$, which covers ordinary
// plates (AB 12345), older and special series and personalised plates.
func NormaliseRegNumber(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if unicode.IsSpace(r) || isDash(r) {
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if out == "" {
		return "", fail(ErrEmpty, ReasonEmpty, "is empty")
	}
	for i, r := range []rune(out) {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == 'Æ' || r == 'Ø' || r == 'Å') {
			return "", fail(ErrCharacter, ReasonRegCharacter, "character %s at position %s is not allowed; use letters A–Z, Æ, Ø, Å and digits", strconv.QuoteRune(r), strconv.Itoa(i+1))
		}
	}
	if n := utf8.RuneCountInString(out); n < 2 || n > 7 {
		return "", fail(ErrLength, ReasonRegLength, "must be 2 to 7 letters and digits, got %s", strconv.Itoa(n))
	}
	return out, nil
}

func isDash(r rune) bool {
	switch r {
	case '-', '‐', '‑', '‒', '–', '—', '−':
		return true
	}
	return false
}

// VIN trims and upper-cases a vehicle identification number and checks it: 17
// characters, digits and letters A–Z except I, O and Q. The check digit in
// position 9 is not verified, since only North American VINs use it.
func VIN(s string) (string, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if v == "" {
		return "", fail(ErrEmpty, ReasonEmpty, "is empty")
	}
	for i, r := range []rune(v) {
		switch {
		case r == 'I' || r == 'O' || r == 'Q':
			hint := "0"
			if r == 'I' {
				hint = "1"
			}
			return "", fail(ErrCharacter, ReasonVINLetter, "letter %s at position %s is never used in a VIN (no I, O or Q); did you mean %s?", string(r), strconv.Itoa(i+1), hint)
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
		default:
			return "", fail(ErrCharacter, ReasonVINCharacter, "character %s at position %s is not allowed in a VIN; use digits and letters A–Z", strconv.QuoteRune(r), strconv.Itoa(i+1))
		}
	}
	if len(v) != 17 {
		return "", fail(ErrLength, ReasonVINLength, "must be 17 characters, got %s", strconv.Itoa(len(v)))
	}
	return v, nil
}

// Mask hides an identifier for receipts and logs: every character but the
// last two becomes '*' ("*********45"). A valid 9-digit organisation number is
// not personal and is returned unchanged; a value of one or two characters is
// masked entirely; "" stays "".
func Mask(id string) string {
	if len(id) == 9 && OrgNr(id) == nil {
		return id
	}
	r := []rune(id)
	keep := 2
	if len(r) <= 2 {
		keep = 0
	}
	return strings.Repeat("*", len(r)-keep) + string(r[len(r)-keep:])
}

// MaskText masks, inside free text, every run of exactly 11 ASCII digits that
// is not part of a longer run, and every "DDDDDD DDDDD" (the printed form of a
// fødselsnummer), so that log lines never carry a personal identity number.
func MaskText(s string) string {
	var b strings.Builder
	last := 0 // s[:last] has been written
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i != 11 && i > 0 && s[i-1] == '%' && j-i >= 2 {
			// The two digits of a URL escape such as %20 are not part of
			// the number that follows.
			i += 2
			continue
		}
		switch {
		case j-i == 11:
			b.WriteString(s[last:i])
			b.WriteString("*********")
			b.WriteString(s[j-2 : j])
			last = j
		case j-i == 6 && j+6 <= len(s) && (s[j] == ' ' || s[j] == '+') && runLen(s, j+1) == 5:
			b.WriteString(s[last:i])
			b.WriteString("****** ***")
			b.WriteString(s[j+4 : j+6])
			last = j + 6
			j += 6
		case j-i == 6 && j+8 <= len(s) && s[j:j+3] == "%20" && runLen(s, j+3) == 5:
			// The printed form URL-encoded, as S3 libraries log keys.
			b.WriteString(s[last:i])
			b.WriteString("******%20***")
			b.WriteString(s[j+6 : j+8])
			last = j + 8
			j += 8
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// runLen returns the length of the digit run starting at s[i].
func runLen(s string, i int) int {
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j - i
}
