package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

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
	fleets, err := importedFleets(ctx, tx, in)
	if err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	stats, err := writeRegistry(ctx, tx, in)
	if err != nil {
		return ImportStats{}, explainOverlap(err)
	}
	// Their exports are rewritten (export.go).
	if err := markFleetsChanged(ctx, tx, fleets, formatTime(s.now())); err != nil {
		return ImportStats{}, fmt.Errorf("registry import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return ImportStats{}, explainOverlap(fmt.Errorf("commit: %w", err))
	}
	return stats, nil
}

// explainOverlap wraps an import's write error, saying what to do when it
// is PostgreSQL refusing an overlapping lessee period.
func explainOverlap(err error) error {
	if d, ok := overlapViolation(err); ok {
		return fmt.Errorf("registry import: %s: a lessee period would overlap another period of the same vehicle on file (%s); end the period on file first, or correct lessee_start and lessee_end; nothing was imported: %w",
			FileVehicles, d, err)
	}
	return fmt.Errorf("registry import: %w", err)
}

// overlapViolation reports whether err is PostgreSQL refusing overlapping
// lessee periods (lessee_periods_no_overlap), with the server's detail.
func overlapViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23P01" && pe.ConstraintName == "lessee_periods_no_overlap" {
		return pe.Detail, true
	}
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
	// A file without the language column leaves the language of the
	// enterprises it updates as it was.
	rows := make([][]any, 0, len(in.enterprises))
	var withLanguage [][]any
	for _, e := range in.enterprises {
		if e.hasLanguage {
			withLanguage = append(withLanguage, []any{e.OrgNr, e.Name, e.FleetOwner, e.Language})
		} else {
			rows = append(rows, []any{e.OrgNr, e.Name, e.FleetOwner})
		}
	}
	if err := insertRows(ctx, tx, `INSERT INTO enterprises (orgnr, name, fleet_owner)`,
		`ON CONFLICT (orgnr) DO UPDATE SET name = excluded.name, fleet_owner = excluded.fleet_owner`, rows); err != nil {
		return st, fmt.Errorf("write enterprises: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO enterprises (orgnr, name, fleet_owner, language)`,
		`ON CONFLICT (orgnr) DO UPDATE SET name = excluded.name, fleet_owner = excluded.fleet_owner, language = excluded.language`,
		withLanguage); err != nil {
		return st, fmt.Errorf("write enterprises: %w", err)
	}
	st.Enterprises = len(rows) + len(withLanguage)

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
