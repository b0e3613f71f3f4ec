package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetreg/lessee"
)

type vehicleRow struct {
	VIN                string `db:"vin"`
	RegistrationNumber string `db:"registration_number"`
	Owner              string `db:"owner_orgnr"`
	OwnerSince         string `db:"owner_since"`
}

type periodRow struct {
	ID         string         `db:"id"`
	VIN        string         `db:"vin"`
	LesseeID   string         `db:"lessee_id"`
	LesseeName string         `db:"lessee_name"`
	Start      string         `db:"start_date"`
	End        sql.NullString `db:"end_date"`
}

func (r periodRow) period() lessee.Period {
	return lessee.Period{
		ID:         r.ID,
		LesseeID:   r.LesseeID,
		LesseeName: r.LesseeName,
		Start:      lessee.Date(r.Start),
		End:        lessee.Date(r.End.String),
	}
}

type enterpriseRow struct {
	OrgNr      string `db:"orgnr"`
	Name       string `db:"name"`
	FleetOwner bool   `db:"fleet_owner"`
	Language   string `db:"language"`
}

type termsRow struct {
	OrgNr      string `db:"orgnr"`
	Agreement  string `db:"agreement"`
	Version    string `db:"version"`
	AcceptedAt string `db:"accepted_at"`
}

type delegationRow struct {
	FleetOwner string         `db:"fleet_owner_orgnr"`
	Delegate   string         `db:"delegate_orgnr"`
	ValidFrom  string         `db:"valid_from"`
	ValidTo    sql.NullString `db:"valid_to"`
	RevokedAt  sql.NullString `db:"revoked_at"`
}

// loadState locks the vehicles named by keys (by VIN or registration number)
// and loads them with their periods, the enterprises of keys.OrgNrs with
// their terms, and the delegations those enterprises give or hold. A dry
// run sees its own would-be periods laid over the registry's, and a
// snapshot the vehicles its earlier chunks named.
func (w *chunkTx) loadState(ctx context.Context, job lessee.Job, keys lessee.Keys) (*lessee.State, error) {
	st := lessee.NewState()
	vehicles, periods, generation, err := w.dialect.loadVehicles(ctx, w, keys)
	if err != nil {
		return nil, err
	}
	if job.DryRun && len(vehicles) > 0 {
		vins := make([]string, len(vehicles))
		for i, v := range vehicles {
			vins[i] = v.VIN
		}
		if periods, err = w.overlayDryRun(ctx, job.ID, vins, periods); err != nil {
			return nil, err
		}
	}
	for _, v := range vehicles {
		st.Vehicles[v.VIN] = &lessee.Vehicle{
			VIN:                v.VIN,
			RegistrationNumber: v.RegistrationNumber,
			Owner:              v.Owner,
			OwnerSince:         lessee.Date(v.OwnerSince),
		}
		st.ByReg[v.RegistrationNumber] = v.VIN
	}
	sortPeriods(periods)
	for _, p := range periods {
		if v := st.Vehicles[p.VIN]; v != nil {
			v.Periods = append(v.Periods, p.period())
		}
	}
	if job.Mode == lessee.ModeSnapshot && len(vehicles) > 0 {
		if err := w.loadNamed(ctx, job.ID, st); err != nil {
			return nil, err
		}
	}
	if err := w.loadAuthority(ctx, st, keys.OrgNrs, generation); err != nil {
		return nil, err
	}
	return st, nil
}

// historyKeys returns the VIN of each vehicle and the date its periods are
// needed from (see lessee.Keys.Since); "" asks for all of them.
func historyKeys(keys lessee.Keys, vehicles []vehicleRow) (vins, since []string) {
	vins, since = make([]string, len(vehicles)), make([]string, len(vehicles))
	for i, v := range vehicles {
		vins[i], since[i] = v.VIN, string(keys.HistoryFrom(v.VIN, v.RegistrationNumber))
	}
	return vins, since
}

// sortPeriods orders periods by vehicle, then start date, then id, so each
// vehicle's history reads oldest first whatever order batches returned.
func sortPeriods(ps []periodRow) {
	slices.SortFunc(ps, func(a, b periodRow) int {
		if a.VIN != b.VIN {
			return strings.Compare(a.VIN, b.VIN)
		}
		if a.Start != b.Start {
			return strings.Compare(a.Start, b.Start)
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// enterpriseTermsRow is an enterprise with one of its terms acceptances,
// or none (the acceptance's fields NULL).
type enterpriseTermsRow struct {
	enterpriseRow
	Agreement  sql.NullString `db:"agreement"`
	Version    sql.NullString `db:"version"`
	AcceptedAt sql.NullString `db:"accepted_at"`
}

// loadEnterprises returns, by orgnr, those of orgnrs that are enterprises,
// each with its terms acceptances, oldest first: one statement, the
// enterprises joined with their acceptances (the foreign key makes every
// acceptance an enterprise's).
func loadEnterprises(ctx context.Context, q queryer, orgnrs []string) (map[string]*lessee.Enterprise, error) {
	var rows []enterpriseTermsRow
	if err := selectIn(ctx, q, &rows, `SELECT e.orgnr, e.name, e.fleet_owner, e.language, t.agreement, t.version, t.accepted_at
		FROM enterprises AS e LEFT JOIN terms_acceptances AS t ON t.orgnr = e.orgnr
		WHERE e.orgnr IN (?)`, orgnrs); err != nil {
		return nil, fmt.Errorf("load enterprises: %w", err)
	}
	slices.SortFunc(rows, func(a, b enterpriseTermsRow) int {
		return strings.Compare(a.AcceptedAt.String, b.AcceptedAt.String)
	})
	out := make(map[string]*lessee.Enterprise, len(rows))
	for _, r := range rows {
		e := out[r.OrgNr]
		if e == nil {
			e = &lessee.Enterprise{OrgNr: r.OrgNr, Name: r.Name, FleetOwner: r.FleetOwner, Language: lessee.Language(r.Language)}
			out[r.OrgNr] = e
		}
		if !r.AcceptedAt.Valid {
			continue
		}
		at, err := parseTime(r.AcceptedAt.String)
		if err != nil {
			return nil, fmt.Errorf("load terms: %w", err)
		}
		e.Terms = append(e.Terms, lessee.Acceptance{
			OrgNr: r.OrgNr, Agreement: lessee.Agreement(r.Agreement.String), Version: r.Version.String, AcceptedAt: at,
		})
	}
	return out, nil
}

// loadTerms returns the terms acceptances of orgnrs by orgnr, oldest first.
func loadTerms(ctx context.Context, q queryer, orgnrs []string) (map[string][]lessee.Acceptance, error) {
	var terms []termsRow
	if err := selectIn(ctx, q, &terms, `SELECT orgnr, agreement, version, accepted_at
		FROM terms_acceptances WHERE orgnr IN (?)`, orgnrs); err != nil {
		return nil, fmt.Errorf("load terms: %w", err)
	}
	slices.SortFunc(terms, func(a, b termsRow) int { return strings.Compare(a.AcceptedAt, b.AcceptedAt) })
	out := map[string][]lessee.Acceptance{}
	for _, t := range terms {
		at, err := parseTime(t.AcceptedAt)
		if err != nil {
			return nil, fmt.Errorf("load terms: %w", err)
		}
		out[t.OrgNr] = append(out[t.OrgNr], lessee.Acceptance{
			OrgNr: t.OrgNr, Agreement: lessee.Agreement(t.Agreement), Version: t.Version, AcceptedAt: at,
		})
	}
	return out, nil
}

// loadDelegations fills st with the delegations in which any of orgnrs is
// fleet owner or delegate.
func loadDelegations(ctx context.Context, q queryer, st *lessee.State, orgnrs []string) error {
	dels, err := readDelegations(ctx, q, orgnrs)
	if err != nil {
		return err
	}
	addDelegations(st, dels)
	return nil
}

// readDelegations returns the delegations in which any of orgnrs is fleet
// owner or delegate; one in which both are comes twice.
func readDelegations(ctx context.Context, q queryer, orgnrs []string) ([]lessee.Delegation, error) {
	var rows []delegationRow
	// One statement: the orgnrs as fleet owners or as delegates.
	if err := selectIn(ctx, q, &rows, `SELECT fleet_owner_orgnr, delegate_orgnr, valid_from, valid_to, revoked_at
		FROM delegations WHERE fleet_owner_orgnr IN (?)
		UNION ALL SELECT fleet_owner_orgnr, delegate_orgnr, valid_from, valid_to, revoked_at
		FROM delegations WHERE delegate_orgnr IN (?)`, orgnrs); err != nil {
		return nil, fmt.Errorf("load delegations: %w", err)
	}
	dels := make([]lessee.Delegation, 0, len(rows))
	for _, d := range rows {
		del := lessee.Delegation{
			FleetOwner: d.FleetOwner,
			Delegate:   d.Delegate,
			ValidFrom:  lessee.Date(d.ValidFrom),
			ValidTo:    lessee.Date(d.ValidTo.String),
		}
		if d.RevokedAt.Valid {
			at, err := parseTime(d.RevokedAt.String)
			if err != nil {
				return nil, fmt.Errorf("load delegations: %w", err)
			}
			del.RevokedAt = &at
		}
		dels = append(dels, del)
	}
	return dels, nil
}
