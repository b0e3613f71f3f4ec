package sqlstore

// Reading and checking the registry files on their own, line by line,
// before Import looks at the database.

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// record is one data line of a registry file, by column name.
type record struct {
	line   int
	fields map[string]string
}

// fileSpec names the columns of a registry file.
type fileSpec struct {
	name     string
	required []string
	optional []string
}

var (
	enterprisesSpec = fileSpec{FileEnterprises, []string{"orgnr", "name", "fleet_owner"}, []string{"language"}}
	termsSpec       = fileSpec{FileTerms, []string{"orgnr", "agreement", "version", "accepted_at"}, nil}
	vehiclesSpec    = fileSpec{FileVehicles,
		[]string{"registration_number", "vin", "owner_orgnr", "owner_since"},
		[]string{"lessee_id", "lessee_start", "lessee_end"}}
	delegationsSpec = fileSpec{FileDelegations,
		[]string{"fleet_owner_orgnr", "delegate_orgnr", "valid_from"},
		[]string{"valid_to", "revoked_at"}}
)

// readCSV reads a registry file into records. Bad headers and lines go to
// ps; only I/O failures are errors. present is false when the file is absent.
func readCSV(path string, spec fileSpec, ps *problems) (recs []record, present bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = f.Close() }() // only read

	r := csv.NewReader(f)
	r.FieldsPerRecord = -1 // checked below, with a clearer message
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		ps.add(spec.name, 1, "file is empty; expected a header row")
		return nil, true, nil
	}
	if err != nil {
		return nil, true, csvProblem(spec.name, err, ps)
	}
	known := map[string]bool{}
	for _, c := range append(slices.Clone(spec.required), spec.optional...) {
		known[c] = true
	}
	cols := make([]string, len(header))
	seen := map[string]bool{}
	headerOK := true
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		h = strings.ToLower(strings.TrimSpace(h))
		cols[i] = h
		switch {
		case !known[h]:
			ps.add(spec.name, 1, "unknown column %q; expected %s", h, strings.Join(append(slices.Clone(spec.required), spec.optional...), ","))
			headerOK = false
		case seen[h]:
			ps.add(spec.name, 1, "column %q appears twice", h)
			headerOK = false
		}
		seen[h] = true
	}
	for _, c := range spec.required {
		if !seen[c] {
			ps.add(spec.name, 1, "missing column %q", c)
			headerOK = false
		}
	}
	if !headerOK {
		return nil, true, nil
	}
	for {
		fields, err := r.Read()
		if errors.Is(err, io.EOF) {
			return recs, true, nil
		}
		if err != nil {
			return recs, true, csvProblem(spec.name, err, ps)
		}
		line, _ := r.FieldPos(0)
		if len(fields) != len(cols) {
			ps.add(spec.name, line, "has %d fields, the header has %d", len(fields), len(cols))
			continue
		}
		rec := record{line: line, fields: make(map[string]string, len(cols))}
		for i, c := range cols {
			rec.fields[c] = strings.TrimSpace(fields[i])
		}
		recs = append(recs, rec)
	}
}

// csvProblem records a CSV syntax error, after which the rest of the file
// cannot be trusted, as a problem; other errors are returned.
func csvProblem(file string, err error, ps *problems) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		ps.add(file, pe.Line, "CSV syntax: %v; the rest of the file was not read", pe.Err)
		return nil
	}
	return fmt.Errorf("read %s: %w", file, err)
}

type enterpriseIn struct {
	line int
	enterpriseRow
	// hasLanguage is set when the file has a language column: only then
	// is a known enterprise's language replaced.
	hasLanguage bool
}

type termsIn struct {
	line int
	termsRow
}

type vehicleIn struct {
	line int
	vehicleRow
	lessee *periodRow
}

type delegationIn struct {
	line int
	delegationRow
}

// registryFiles is what Import parsed from DIR.
type registryFiles struct {
	enterprises []enterpriseIn
	terms       []termsIn
	vehicles    []vehicleIn
	delegations []delegationIn
}

// parseRegistry reads and checks the files of dir on their own; present
// reports whether any file was there.
func (s *Store) parseRegistry(dir string, opt ImportOptions, ps *problems) (registryFiles, bool, error) {
	var in registryFiles
	anyPresent := false
	read := func(spec fileSpec) ([]record, error) {
		recs, present, err := readCSV(filepath.Join(dir, spec.name), spec, ps)
		anyPresent = anyPresent || present
		return recs, err
	}

	recs, err := read(enterprisesSpec)
	if err != nil {
		return in, false, err
	}
	seenOrg := map[string]int{}
	for _, r := range recs {
		e := enterpriseIn{line: r.line}
		ok := checkOrgNr(ps, FileEnterprises, r, "orgnr", &e.OrgNr)
		e.Name = r.fields["name"]
		if e.Name == "" {
			ps.add(FileEnterprises, r.line, "name is empty")
			ok = false
		}
		switch strings.ToLower(r.fields["fleet_owner"]) {
		case "true":
			e.FleetOwner = true
		case "false":
		default:
			ps.add(FileEnterprises, r.line, "fleet_owner must be true or false")
			ok = false
		}
		if lang, has := r.fields["language"]; has {
			l, valid := lessee.ParseLanguage(lang)
			if !valid {
				ps.add(FileEnterprises, r.line, "language must be nb, en or empty (the default language)")
				ok = false
			}
			e.Language, e.hasLanguage = string(l), true
		}
		if prev, dup := seenOrg[e.OrgNr]; dup && e.OrgNr != "" {
			ps.add(FileEnterprises, r.line, "orgnr %s already on line %d", e.OrgNr, prev)
			ok = false
		}
		seenOrg[e.OrgNr] = r.line
		if ok {
			in.enterprises = append(in.enterprises, e)
		}
	}

	if recs, err = read(termsSpec); err != nil {
		return in, false, err
	}
	seenTerms := map[[3]string]int{}
	for _, r := range recs {
		t := termsIn{line: r.line}
		ok := checkOrgNr(ps, FileTerms, r, "orgnr", &t.OrgNr)
		t.Agreement = r.fields["agreement"]
		if a := lessee.Agreement(t.Agreement); a != lessee.AgreementLesseeAPI && a != lessee.AgreementThirdParty {
			ps.add(FileTerms, r.line, "agreement must be %s or %s", lessee.AgreementLesseeAPI, lessee.AgreementThirdParty)
			ok = false
		}
		t.Version = r.fields["version"]
		if t.Version == "" {
			ps.add(FileTerms, r.line, "version is empty")
			ok = false
		}
		at, tok := s.parseInstant(ps, FileTerms, r, "accepted_at", true)
		ok = ok && tok
		t.AcceptedAt = at
		k := [3]string{t.OrgNr, t.Agreement, t.Version}
		if prev, dup := seenTerms[k]; dup && ok {
			ps.add(FileTerms, r.line, "orgnr, agreement and version already on line %d", prev)
			ok = false
		}
		seenTerms[k] = r.line
		if ok {
			in.terms = append(in.terms, t)
		}
	}

	if recs, err = read(vehiclesSpec); err != nil {
		return in, false, err
	}
	seenVIN, seenReg := map[string]int{}, map[string]int{}
	for _, r := range recs {
		v := vehicleIn{line: r.line}
		ok := true
		reg, err := ident.NormaliseRegNumber(r.fields["registration_number"])
		if err != nil {
			ps.add(FileVehicles, r.line, "registration_number %v", err)
			ok = false
		}
		v.RegistrationNumber = reg
		vin, err := ident.VIN(r.fields["vin"])
		if err != nil {
			ps.add(FileVehicles, r.line, "vin %v", err)
			ok = false
		}
		v.VIN = vin
		ok = checkOrgNr(ps, FileVehicles, r, "owner_orgnr", &v.Owner) && ok
		since, dok := parseDate(ps, FileVehicles, r, "owner_since", true)
		ok = ok && dok
		v.OwnerSince = since
		if p, pok := parseImportedLessee(ps, r, vin, opt); !pok {
			ok = false
		} else {
			v.lessee = p
		}
		if prev, dup := seenVIN[vin]; dup && vin != "" {
			ps.add(FileVehicles, r.line, "vin %s already on line %d", vin, prev)
			ok = false
		}
		if prev, dup := seenReg[reg]; dup && reg != "" {
			ps.add(FileVehicles, r.line, "registration_number %s already on line %d", reg, prev)
			ok = false
		}
		seenVIN[vin], seenReg[reg] = r.line, r.line
		if ok {
			in.vehicles = append(in.vehicles, v)
		}
	}

	if recs, err = read(delegationsSpec); err != nil {
		return in, false, err
	}
	seenDel := map[[3]string]int{}
	for _, r := range recs {
		d := delegationIn{line: r.line}
		ok := checkOrgNr(ps, FileDelegations, r, "fleet_owner_orgnr", &d.FleetOwner)
		ok = checkOrgNr(ps, FileDelegations, r, "delegate_orgnr", &d.Delegate) && ok
		if ok && d.FleetOwner == d.Delegate {
			ps.add(FileDelegations, r.line, "delegate_orgnr is the fleet owner itself")
			ok = false
		}
		from, fok := parseDate(ps, FileDelegations, r, "valid_from", true)
		to, tok := parseDate(ps, FileDelegations, r, "valid_to", false)
		ok = ok && fok && tok
		if fok && tok && to != "" && to < from {
			ps.add(FileDelegations, r.line, "valid_to %s is before valid_from %s", to, from)
			ok = false
		}
		d.ValidFrom = from
		d.ValidTo.String, d.ValidTo.Valid = to, to != ""
		revoked, rok := s.parseInstant(ps, FileDelegations, r, "revoked_at", false)
		ok = ok && rok
		d.RevokedAt.String, d.RevokedAt.Valid = revoked, revoked != ""
		k := [3]string{d.FleetOwner, d.Delegate, d.ValidFrom}
		if prev, dup := seenDel[k]; dup && ok {
			ps.add(FileDelegations, r.line, "fleet_owner_orgnr, delegate_orgnr and valid_from already on line %d", prev)
			ok = false
		}
		seenDel[k] = r.line
		if ok {
			in.delegations = append(in.delegations, d)
		}
	}
	return in, anyPresent, nil
}

// parseImportedLessee reads the optional lessee columns of a vehicles.csv
// line. It returns nil when the line names no lessee.
func parseImportedLessee(ps *problems, r record, vin string, opt ImportOptions) (*periodRow, bool) {
	id := ident.NormaliseID(r.fields["lessee_id"])
	start, sok := parseDate(ps, FileVehicles, r, "lessee_start", false)
	end, eok := parseDate(ps, FileVehicles, r, "lessee_end", false)
	if !sok || !eok {
		return nil, false
	}
	if id == "" {
		if start != "" || end != "" {
			ps.add(FileVehicles, r.line, "lessee_start and lessee_end need a lessee_id")
			return nil, false
		}
		return nil, true
	}
	ok := true
	if _, err := ident.LesseeID(id, opt.AllowSynthetic); err != nil {
		ps.add(FileVehicles, r.line, "lessee_id %v", err) // ident never repeats the value
		ok = false
	}
	if start == "" {
		ps.add(FileVehicles, r.line, "lessee_start is required with a lessee_id")
		ok = false
	}
	// A period runs up to, not including, its end, so one ending on its
	// start holds no day; the change files refuse it, and so does import.
	if start != "" && end != "" && end <= start {
		ps.add(FileVehicles, r.line, "lessee_end %s is not after lessee_start %s; a lessee period runs up to, not including, its end date", end, start)
		ok = false
	}
	if !ok {
		return nil, false
	}
	p := &periodRow{ID: "import-" + vin + "-" + start, VIN: vin, LesseeID: id, Start: start}
	p.End.String, p.End.Valid = end, end != ""
	return p, true
}

// checkOrgNr validates the orgnr in column col into dst.
func checkOrgNr(ps *problems, file string, r record, col string, dst *string) bool {
	v := ident.NormaliseID(r.fields[col])
	if err := ident.OrgNr(v); err != nil {
		ps.add(file, r.line, "%s %v", col, err)
		return false
	}
	*dst = v
	return true
}

// parseDate reads a YYYY-MM-DD date; "" when empty and not required.
func parseDate(ps *problems, file string, r record, col string, required bool) (string, bool) {
	v := r.fields[col]
	if v == "" {
		if required {
			ps.add(file, r.line, "%s is empty", col)
			return "", false
		}
		return "", true
	}
	if _, err := time.Parse(time.DateOnly, v); err != nil || len(v) != len(time.DateOnly) {
		ps.add(file, r.line, "%s must be a date YYYY-MM-DD", col)
		return "", false
	}
	return v, true
}

// parseInstant reads an RFC 3339 time, or a YYYY-MM-DD date meaning the start
// of that day in Norway, into stored form.
func (s *Store) parseInstant(ps *problems, file string, r record, col string, required bool) (string, bool) {
	v := r.fields[col]
	if v == "" {
		if required {
			ps.add(file, r.line, "%s is empty", col)
			return "", false
		}
		return "", true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return formatTime(t), true
	}
	if len(v) == len(time.DateOnly) {
		if t, err := time.ParseInLocation(time.DateOnly, v, s.oslo); err == nil {
			return formatTime(t), true
		}
	}
	ps.add(file, r.line, "%s must be an RFC 3339 time or a date YYYY-MM-DD", col)
	return "", false
}
