package gen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// newRand returns the generator's random source for seed and a stream name,
// so that the registry and a change file drawn from one seed do not share a
// sequence.
func newRand(seed int64, stream string) *rand.Rand {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(stream); i++ {
		h ^= uint64(stream[i])
		h *= 1099511628211
	}
	return rand.New(rand.NewPCG(uint64(seed), h))
}

// orgNr draws a valid organisation number: 9 digits starting with 8 or 9,
// as Norwegian ones do, with a MOD11 check digit.
func orgNr(r *rand.Rand) (string, error) {
	for range 100 {
		b := make([]byte, 8)
		b[0] = byte('8' + r.IntN(2))
		for i := 1; i < 8; i++ {
			b[i] = byte('0' + r.IntN(10))
		}
		s, ok := ident.CompleteOrgNr(string(b))
		if !ok {
			continue
		}
		if err := ident.OrgNr(s); err != nil {
			return "", fmt.Errorf("generated orgnr fails its rule: %w", err)
		}
		return s, nil
	}
	return "", fmt.Errorf("generate orgnr: no valid number drawn")
}

// personKind selects what personID draws.
type personKind int

const (
	personFNR personKind = iota
	personDNumber
)

// personID draws a valid fødselsnummer or D-number born 1940–2006, with a
// synthetic month (+80) when synthetic is set.
func personID(r *rand.Rand, kind personKind, synthetic bool) (string, error) {
	for range 200 {
		birth := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(67*365))
		y, m, d := birth.Date()
		var individual int
		if y < 2000 {
			individual = r.IntN(500) // 000–499: born 1900–1999
		} else {
			individual = 500 + r.IntN(500) // 500–999: born 2000–2039
		}
		day, month := d, int(m)
		if kind == personDNumber {
			day += 40
		}
		if synthetic {
			month += 80
		}
		s, ok := ident.CompletePersonID(fmt.Sprintf("%02d%02d%02d%03d", day, month, y%100, individual))
		if !ok {
			continue
		}
		if _, err := ident.PersonID(s, synthetic); err != nil {
			return "", fmt.Errorf("generated identity number fails its rule: %w", err)
		}
		return s, nil
	}
	return "", fmt.Errorf("generate identity number: no valid number drawn")
}

// Letters and characters for registration numbers and VINs: no I, O or Q,
// which VINs forbid and plates avoid.
const (
	plateLetters = "ABCDEFGHJKLMNPRSTUVWXYZ"
	vinChars     = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
)

// World manufacturer identifiers the VINs start with. "XX9" is kept for
// vehicles that are not in the registry.
var wmis = []string{"WVW", "WBA", "WDD", "YV1", "VF1", "TMB", "JTD", "WF0", "ZFA", "KMH", "SAL", "5YJ"}

const unknownWMI = "XX9"

// plateSpace is how many plates of two letters and five digits exist.
const plateSpace = len(plateLetters) * len(plateLetters) * 100000

// plate returns the registration number of vehicle n. n goes through a
// bijection of the plate space (a multiplier coprime with it), so numbers
// look scattered yet never repeat for n < plateSpace.
func plate(n int, offset int) string {
	x := (n*7919 + offset) % plateSpace
	l := x / 100000
	return fmt.Sprintf("%c%c%05d", plateLetters[l/len(plateLetters)], plateLetters[l%len(plateLetters)], x%100000)
}

// vinSpace is how many serials the last eight VIN characters hold.
const vinSpace = 100000000

// vin returns the VIN of vehicle n: a manufacturer prefix, six random
// characters and an eight-digit serial that is a bijection of n, so VINs
// never repeat for n < vinSpace.
func vin(r *rand.Rand, wmi string, n, offset int) string {
	b := make([]byte, 0, 17)
	b = append(b, wmi...)
	for range 6 {
		b = append(b, vinChars[r.IntN(len(vinChars))])
	}
	return string(b) + fmt.Sprintf("%08d", (n*7919+offset)%vinSpace)
}

var (
	firstNames = []string{"Kari", "Ola", "Ingrid", "Per", "Anne", "Lars", "Silje", "Jonas", "Nora", "Emil",
		"Marit", "Henrik", "Sofie", "Magnus", "Ida", "Sindre", "Hanne", "Eirik", "Maja", "Tor"}
	lastNames = []string{"Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen",
		"Kristiansen", "Jensen", "Karlsen", "Berg", "Haugen", "Hagen", "Bakken", "Dahl", "Lie", "Solberg"}
	namePrefixes = []string{"Nordlys", "Fjord", "Vestland", "Polar", "Midnattsol", "Trønder", "Aurora", "Kyst",
		"Fjell", "Viking", "Bergen", "Oslo", "Lofoten", "Finnmark", "Sørlandet", "Mjøsa"}
	nameKinds = []string{"Leasing", "Bilutleie", "Flåte", "Finans", "Transport", "Bil", "Flåtepartner", "Logistikk"}
)

func personName(r *rand.Rand) string {
	return firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))]
}

// day adds n days to d.
func day(d lessee.Date, n int) lessee.Date {
	t, err := time.Parse(time.DateOnly, string(d))
	if err != nil {
		return d
	}
	return lessee.DateOf(t.AddDate(0, 0, n))
}

// daysBetween returns e - d in days.
func daysBetween(d, e lessee.Date) int {
	a, err1 := time.Parse(time.DateOnly, string(d))
	b, err2 := time.Parse(time.DateOnly, string(e))
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(b.Sub(a).Hours() / 24)
}

func maxDate(ds ...lessee.Date) lessee.Date {
	var m lessee.Date
	for _, d := range ds {
		if d > m {
			m = d
		}
	}
	return m
}
