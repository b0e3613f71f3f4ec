package sqlstore

import (
	"context"
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

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// Registry file names, in load order: later files refer to earlier ones.
const (
	FileEnterprises = "enterprises.csv"
	FileTerms       = "terms.csv"
	FileVehicles    = "vehicles.csv"
	FileDelegations = "delegations.csv"
)

// maxImportProblems caps the problems an ImportError lists.
const maxImportProblems = 100

// ImportOptions configures Import.
type ImportOptions struct {
	// AllowSynthetic accepts synthetic test identity numbers as lessee ids.
	AllowSynthetic bool
}

// ImportStats counts the rows Import upserted, per file.
type ImportStats struct {
	Enterprises   int
	Terms         int
	Vehicles      int
	LesseePeriods int // vehicles.csv rows with a lessee
	Delegations   int
}

// ImportProblem is one bad line of a registry file. Line 1 is the header.
type ImportProblem struct {
	File    string
	Line    int
	Message string
}

func (p ImportProblem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Message
	}
	return fmt.Sprintf("%s line %d: %s", p.File, p.Line, p.Message)
}

// ImportError reports the bad lines of a refused import; nothing was loaded.
// Problems is ordered by file and line and capped at 100; Total counts all.
// Messages never repeat a personal identity number.
type ImportError struct {
	Problems []ImportProblem
	Total    int
}

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry import refused, nothing loaded: %d bad line(s)", e.Total)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	if e.Total > len(e.Problems) {
		fmt.Fprintf(&b, "\n  ... and %d more", e.Total-len(e.Problems))
	}
	return b.String()
}

// problems collects ImportProblems.
type problems struct{ list []ImportProblem }

func (ps *problems) add(file string, line int, format string, args ...any) {
	// Masking is a safety net: no message should carry an identity number.
	ps.list = append(ps.list, ImportProblem{File: file, Line: line, Message: ident.MaskText(fmt.Sprintf(format, args...))})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	order := map[string]int{FileEnterprises: 0, FileTerms: 1, FileVehicles: 2, FileDelegations: 3}
	slices.SortStableFunc(ps.list, func(a, b ImportProblem) int {
		if a.File != b.File {
			return order[a.File] - order[b.File]
		}
		return a.Line - b.Line
	})
	e := &ImportError{Total: len(ps.list), Problems: ps.list}
	if len(e.Problems) > maxImportProblems {
		e.Problems = e.Problems[:maxImportProblems]
	}
	return e
}

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
	enterprisesSpec = fileSpec{FileEnterprises, []string{"orgnr", "name", "fleet_owner"}, nil}
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
	defer f.Close()

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

// Import loads whichever of enterprises.csv, terms.csv, vehicles.csv and
// delegations.csv dir holds, upserting by key, in one transaction: if any
// line is bad, nothing is loaded and the error is an *ImportError naming
// every bad file and line. Orgnrs a file refers to (vehicle owner, terms,
// delegation parties) must be enterprises in enterprises.csv or already in
// the registry. A vehicles.csv lessee upserts the period with id
// "import-<vin>-<lessee_start>"; other periods of the vehicle are left as
// they are.
func (s *Store) Import(ctx context.Context, dir string, opt ImportOptions) (ImportStats, error) {
	var ps problems
	in, present, err := s.parseRegistry(dir, opt, &ps)
	if err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	if !present {
		return ImportStats{}, fmt.Errorf("registry import: %s holds none of %s, %s, %s, %s",
			dir, FileEnterprises, FileTerms, FileVehicles, FileDelegations)
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := checkReferences(ctx, tx, in, &ps); err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	if err := ps.err(); err != nil {
		return ImportStats{}, err
	}
	stats, err := writeRegistry(ctx, tx, in)
	if err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return ImportStats{}, fmt.Errorf("registry import: commit: %w", err)
	}
	return stats, nil
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
	if start != "" && end != "" && end < start {
		ps.add(FileVehicles, r.line, "lessee_end %s is before lessee_start %s", end, start)
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

// checkReferences reports orgnrs that are neither in enterprises.csv nor in
// the registry, and registration numbers the registry gives another vehicle.
func checkReferences(ctx context.Context, tx *sqlx.Tx, in registryFiles, ps *problems) error {
	inFile := map[string]bool{}
	for _, e := range in.enterprises {
		inFile[e.OrgNr] = true
	}
	var ask []string
	need := func(orgnr string) {
		if !inFile[orgnr] {
			ask = append(ask, orgnr)
		}
	}
	for _, t := range in.terms {
		need(t.OrgNr)
	}
	for _, v := range in.vehicles {
		need(v.Owner)
	}
	for _, d := range in.delegations {
		need(d.FleetOwner)
		need(d.Delegate)
	}
	var found []string
	if err := selectIn(ctx, tx, &found, `SELECT orgnr FROM enterprises WHERE orgnr IN (?)`, ask); err != nil {
		return fmt.Errorf("check enterprises: %w", err)
	}
	known := inFile // from here on also what the registry holds
	for _, o := range found {
		known[o] = true
	}
	for _, t := range in.terms {
		if !known[t.OrgNr] {
			ps.add(FileTerms, t.line, "orgnr %s is not a known enterprise", t.OrgNr)
		}
	}
	for _, v := range in.vehicles {
		if !known[v.Owner] {
			ps.add(FileVehicles, v.line, "owner_orgnr %s is not a known enterprise", v.Owner)
		}
	}
	for _, d := range in.delegations {
		if !known[d.FleetOwner] {
			ps.add(FileDelegations, d.line, "fleet_owner_orgnr %s is not a known enterprise", d.FleetOwner)
		}
		if !known[d.Delegate] {
			ps.add(FileDelegations, d.line, "delegate_orgnr %s is not a known enterprise", d.Delegate)
		}
	}

	regs := make([]string, 0, len(in.vehicles))
	fileVINs := map[string]bool{}
	for _, v := range in.vehicles {
		regs = append(regs, v.RegistrationNumber)
		fileVINs[v.VIN] = true
	}
	var taken []vehicleRow
	if err := selectIn(ctx, tx, &taken, `SELECT vin, registration_number, owner_orgnr, owner_since
		FROM vehicles WHERE registration_number IN (?)`, regs); err != nil {
		return fmt.Errorf("check registration numbers: %w", err)
	}
	owner := map[string]string{}
	for _, t := range taken {
		owner[t.RegistrationNumber] = t.VIN
	}
	for _, v := range in.vehicles {
		// A vehicle in the file may give its number up in the same import.
		if other, ok := owner[v.RegistrationNumber]; ok && other != v.VIN && !fileVINs[other] {
			ps.add(FileVehicles, v.line, "registration_number %s belongs to vehicle %s", v.RegistrationNumber, other)
		}
	}
	return nil
}

// writeRegistry upserts what the files hold, referenced tables first.
func writeRegistry(ctx context.Context, tx *sqlx.Tx, in registryFiles) (ImportStats, error) {
	var st ImportStats
	rows := make([][]any, 0, len(in.enterprises))
	for _, e := range in.enterprises {
		rows = append(rows, []any{e.OrgNr, e.Name, e.FleetOwner})
	}
	if err := insertRows(ctx, tx, `INSERT INTO enterprises (orgnr, name, fleet_owner)`,
		`ON CONFLICT (orgnr) DO UPDATE SET name = excluded.name, fleet_owner = excluded.fleet_owner`, rows); err != nil {
		return st, fmt.Errorf("write enterprises: %w", err)
	}
	st.Enterprises = len(rows)

	rows = rows[:0]
	for _, t := range in.terms {
		rows = append(rows, []any{t.OrgNr, t.Agreement, t.Version, t.AcceptedAt})
	}
	if err := insertRows(ctx, tx, `INSERT INTO terms_acceptances (orgnr, agreement, version, accepted_at)`,
		`ON CONFLICT (orgnr, agreement, version) DO UPDATE SET accepted_at = excluded.accepted_at`, rows); err != nil {
		return st, fmt.Errorf("write terms: %w", err)
	}
	st.Terms = len(rows)

	rows = rows[:0]
	var periods [][]any
	// VIN order, the order ApplyChunk locks vehicles in, so that an import
	// and a chunk queue on PostgreSQL rather than deadlock.
	vehicles := slices.Clone(in.vehicles)
	slices.SortFunc(vehicles, func(a, b vehicleIn) int { return strings.Compare(a.VIN, b.VIN) })
	for _, v := range vehicles {
		rows = append(rows, []any{v.VIN, v.RegistrationNumber, v.Owner, v.OwnerSince})
		if p := v.lessee; p != nil {
			periods = append(periods, []any{p.ID, p.VIN, p.LesseeID, p.Start, p.End})
		}
	}
	if err := insertRows(ctx, tx, `INSERT INTO vehicles (vin, registration_number, owner_orgnr, owner_since)`,
		`ON CONFLICT (vin) DO UPDATE SET registration_number = excluded.registration_number,
		owner_orgnr = excluded.owner_orgnr, owner_since = excluded.owner_since`, rows); err != nil {
		return st, fmt.Errorf("write vehicles: %w", err)
	}
	st.Vehicles = len(rows)
	if err := insertRows(ctx, tx, `INSERT INTO lessee_periods (id, vin, lessee_id, start_date, end_date)`,
		`ON CONFLICT (id) DO UPDATE SET lessee_id = excluded.lessee_id, end_date = excluded.end_date`, periods); err != nil {
		return st, fmt.Errorf("write lessee periods: %w", err)
	}
	st.LesseePeriods = len(periods)

	rows = rows[:0]
	for _, d := range in.delegations {
		rows = append(rows, []any{d.FleetOwner, d.Delegate, d.ValidFrom, d.ValidTo, d.RevokedAt})
	}
	if err := insertRows(ctx, tx, `INSERT INTO delegations (fleet_owner_orgnr, delegate_orgnr, valid_from, valid_to, revoked_at)`,
		`ON CONFLICT (fleet_owner_orgnr, delegate_orgnr, valid_from) DO UPDATE SET
		valid_to = excluded.valid_to, revoked_at = excluded.revoked_at`, rows); err != nil {
		return st, fmt.Errorf("write delegations: %w", err)
	}
	st.Delegations = len(rows)
	return st, nil
}
