package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetreg/lessee"
)

// Vehicle returns a vehicle with its lessee periods, oldest first, or an
// error wrapping ErrNotFound.
func (s *Store) Vehicle(ctx context.Context, vin string) (lessee.Vehicle, error) {
	var v vehicleRow
	err := s.db.GetContext(ctx, &v, s.db.Rebind(`SELECT vin, registration_number, owner_orgnr, owner_since
		FROM vehicles WHERE vin = ?`), vin)
	if err != nil {
		if errIsNotFound(err) {
			return lessee.Vehicle{}, fmt.Errorf("get vehicle %s: %w", vin, ErrNotFound)
		}
		return lessee.Vehicle{}, fmt.Errorf("get vehicle: %w", err)
	}
	var periods []periodRow
	err = s.db.SelectContext(ctx, &periods, s.db.Rebind(`SELECT id, vin, lessee_id, lessee_name, start_date, end_date
		FROM lessee_periods WHERE vin = ? ORDER BY start_date, id`), vin)
	if err != nil {
		return lessee.Vehicle{}, fmt.Errorf("get vehicle: periods: %w", err)
	}
	out := lessee.Vehicle{
		VIN:                v.VIN,
		RegistrationNumber: v.RegistrationNumber,
		Owner:              v.Owner,
		OwnerSince:         lessee.Date(v.OwnerSince),
	}
	for _, p := range periods {
		out.Periods = append(out.Periods, p.period())
	}
	return out, nil
}

// VehicleByRegistrationNumber returns the vehicle with that registration
// number (normalised), as Vehicle does.
func (s *Store) VehicleByRegistrationNumber(ctx context.Context, reg string) (lessee.Vehicle, error) {
	var vin string
	err := s.db.GetContext(ctx, &vin, s.db.Rebind(`SELECT vin FROM vehicles WHERE registration_number = ?`), reg)
	if err != nil {
		if errIsNotFound(err) {
			return lessee.Vehicle{}, fmt.Errorf("get vehicle %s: %w", reg, ErrNotFound)
		}
		return lessee.Vehicle{}, fmt.Errorf("get vehicle: %w", err)
	}
	return s.Vehicle(ctx, vin)
}

// RegistryEmpty reports whether the registry holds no enterprises and no
// vehicles, so that embedded mode knows to load its demo data.
func (s *Store) RegistryEmpty(ctx context.Context) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM enterprises LIMIT 1) e) +
		(SELECT COUNT(*) FROM (SELECT 1 FROM vehicles LIMIT 1) v)`)
	if err != nil {
		return false, fmt.Errorf("registry empty: %w", err)
	}
	return n == 0, nil
}

// AuditEntry is one entry of the audit log: an applied change.
type AuditEntry struct {
	ChangeID           string `db:"change_id"`
	JobID              string `db:"job_id"`
	Line               int    `db:"row_line"`
	Submitter          string `db:"submitter"`
	OnBehalfOf         string `db:"on_behalf_of"`
	FileKey            string `db:"file_key"`
	Operation          string `db:"operation"`
	VIN                string `db:"vin"`
	RegistrationNumber string `db:"registration_number"`
	LesseeID           string `db:"lessee_id"`
	LesseeName         string `db:"lessee_name"`
	// BeforeJSON and AfterJSON hold the lessee period before and after the
	// change as a JSON object, or "null" when there was none.
	BeforeJSON string    `db:"before_json"`
	AfterJSON  string    `db:"after_json"`
	CreatedAt  time.Time `db:"-"`
	// Source is "file" or "api"; RequestID names the API call.
	Source    string `db:"source"`
	RequestID string `db:"request_id"`
}

// Audit returns the audit entries of one vehicle, or all when vin is "",
// ordered by time and then by file and row.
func (s *Store) Audit(ctx context.Context, vin string) ([]AuditEntry, error) {
	type auditRow struct {
		AuditEntry
		CreatedAt string `db:"created_at"`
	}
	query := `SELECT change_id, job_id, row_line, submitter, on_behalf_of, file_key, operation, vin,
		registration_number, lessee_id, lessee_name, before_json, after_json, created_at, source, request_id FROM audit_log`
	var args []any
	if vin != "" {
		query += ` WHERE vin = ?`
		args = append(args, vin)
	}
	query += ` ORDER BY created_at, job_id, row_line, change_id`
	var rows []auditRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		e := r.AuditEntry
		at, err := parseTime(r.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		e.CreatedAt = at
		out = append(out, e)
	}
	return out, nil
}

// Enterprise returns the enterprise orgnr with all its terms acceptances,
// oldest first, loaded as for a chunk, or an error wrapping ErrNotFound.
// Whether a submitter may submit at all is for the caller to decide from
// them (see (*lessee.Enterprise).AcceptedAny). Acceptances alone decide
// that, so an orgnr with acceptances but no enterprise row (which the
// foreign key rules out) is returned with only OrgNr and Terms set.
func (s *Store) Enterprise(ctx context.Context, orgnr string) (*lessee.Enterprise, error) {
	ents, err := loadEnterprises(ctx, s.db, []string{orgnr})
	if err != nil {
		return nil, fmt.Errorf("get enterprise: %w", err)
	}
	if e := ents[orgnr]; e != nil {
		return e, nil
	}
	terms, err := loadTerms(ctx, s.db, []string{orgnr})
	if err != nil {
		return nil, fmt.Errorf("get enterprise: %w", err)
	}
	if ts := terms[orgnr]; len(ts) > 0 {
		return &lessee.Enterprise{OrgNr: orgnr, Terms: ts}, nil
	}
	return nil, fmt.Errorf("get enterprise %s: %w", orgnr, ErrNotFound)
}
