package gen

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fleetreg/lessee"
)

// This file sets up a change file: its configuration, whom the submitter
// may act for and which vehicles it may change, and WriteChanges. The rows
// meant to be applied or unchanged are in changes_rows.go, those meant to be
// rejected in changes_rejected.go.

// ChangesConfig says what change file to generate. Zero shares take their
// defaults.
type ChangesConfig struct {
	Seed int64
	Rows int
	// Submitter is the orgnr the file is uploaded as (inbox/<orgnr>/...).
	// Empty means the fleet owner with the lessee API agreement that owns
	// the most vehicles.
	Submitter string
	// Unchanged is the share of rows meant to be unchanged (default 0.08):
	// a repeated add of an open period or a repeated remove.
	Unchanged float64
	// Rejected is the share of rows meant to be rejected (default 0.15),
	// spread over every row code the registry makes possible.
	Rejected float64
	// Synthetic makes new person lessees synthetic test numbers.
	Synthetic bool
}

func (c ChangesConfig) withDefaults() ChangesConfig {
	if c.Unchanged == 0 {
		c.Unchanged = 0.08
	}
	if c.Rejected == 0 {
		c.Rejected = 0.15
	}
	return c
}

// ChangeHeader returns the canonical change-file header.
func ChangeHeader() []string {
	h := make([]string, lessee.NumColumns)
	for c := range lessee.NumColumns {
		h[c] = c.String()
	}
	return h
}

// changesStart is the first effective date a change file uses: after every
// date of a generated registry.
const changesStart lessee.Date = "2025-07-01"

// decisionTime is when the intended outcomes are judged: terms and
// revocations of a generated registry all lie before it.
var decisionTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// scope is a fleet owner the submitter may act for.
type scope struct {
	fleetOwner string
	onBehalfOf string      // "" when the submitter acts for itself
	validFrom  lessee.Date // first date the delegation covers; "" for itself
}

// vstate is the generator's model of one vehicle the submitter may change,
// advanced as rows are written so later rows see earlier ones. Dates only
// move forward: every state-changing row is after every date before it.
type vstate struct {
	v       *lessee.Vehicle
	scope   *scope
	periods []lessee.Period
	cursor  lessee.Date
	removed *lessee.Period // the period the last applied row closed, until an add
}

// openOn mirrors the registry's rule: a period is open on d when it has no
// end or ends after d. With dates moving forward at most one is.
func (s *vstate) openOn(d lessee.Date) int {
	for i := len(s.periods) - 1; i >= 0; i-- {
		if p := s.periods[i]; p.OpenOn(d) && !d.Before(p.Start) {
			return i
		}
	}
	return -1
}

func (s *vstate) endsOn(d lessee.Date) bool {
	for _, p := range s.periods {
		if p.End == d {
			return true
		}
	}
	return false
}

func (s *vstate) hasLessee(id string) bool {
	for _, p := range s.periods {
		if p.LesseeID == id {
			return true
		}
	}
	return false
}

// changeGen writes one change file.
type changeGen struct {
	r         *rand.Rand
	cfg       ChangesConfig
	submitter *lessee.Enterprise
	pool      []*vstate        // vehicles the submitter may change
	others    []lessee.Vehicle // vehicles of fleet owners it may not act for
	scopes    []*scope
	// Fleet owners with the lessee API agreement the submitter may not act
	// for: without any delegation, and with only invalid ones.
	undelegated, expired []string
	nonFleet             []string // enterprises without the fleet-owner role
	otherOrgs            []string // every enterprise but the submitter
	noTerms              []string // fleet owners without the lessee API agreement
	unknownN             int
	maxStep              int // days a row may move a vehicle's dates on
	rec                  [lessee.NumColumns]string
}

// WriteChanges writes a change file of cfg.Rows rows for reg as CSV (comma,
// LF, the canonical header) to w. Rows are valid changes of the submitter's
// vehicles in file order (adds, removes, remove-then-add on one vehicle),
// with cfg's shares meant unchanged or rejected; each row's reference names
// its intended outcome. It fails when the submitter can change no vehicle.
func WriteChanges(w io.Writer, reg Registry, cfg ChangesConfig) error {
	g, err := newChangeGen(reg, cfg)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	if err := cw.Write(ChangeHeader()); err != nil {
		return fmt.Errorf("write changes: %w", err)
	}
	for i := range g.cfg.Rows {
		intent := g.row()
		g.rec[lessee.ColReference] = fmt.Sprintf("R%07d-%s", i+1, intent)
		if err := cw.Write(g.rec[:]); err != nil {
			return fmt.Errorf("write changes: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write changes: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write changes: %w", err)
	}
	return nil
}

func newChangeGen(reg Registry, cfg ChangesConfig) (*changeGen, error) {
	if cfg.Rows < 0 {
		return nil, errors.New("generate changes: rows must not be negative")
	}
	cfg = cfg.withDefaults()
	g := &changeGen{r: newRand(cfg.Seed, "changes"), cfg: cfg}

	byOrg := map[string]*lessee.Enterprise{}
	for i := range reg.Enterprises {
		byOrg[reg.Enterprises[i].OrgNr] = &reg.Enterprises[i]
	}
	if cfg.Submitter == "" {
		cfg.Submitter = reg.LargestFleet()
		g.cfg.Submitter = cfg.Submitter
	}
	sub := byOrg[cfg.Submitter]
	if sub == nil {
		return nil, fmt.Errorf("generate changes: submitter %s is not an enterprise of the registry", cfg.Submitter)
	}
	g.submitter = sub

	// Whom the submitter may act for, and the fleet owners it may not.
	scopes := map[string]*scope{}
	if sub.FleetOwner && sub.Accepted(lessee.AgreementLesseeAPI, decisionTime) {
		scopes[sub.OrgNr] = &scope{fleetOwner: sub.OrgNr}
	}
	thirdParty := sub.Accepted(lessee.AgreementThirdParty, decisionTime)
	dels := map[string][]lessee.Delegation{}
	for _, d := range reg.Delegations {
		if d.Delegate == sub.OrgNr {
			dels[d.FleetOwner] = append(dels[d.FleetOwner], d)
		}
	}
	for i := range reg.Enterprises {
		e := &reg.Enterprises[i]
		if e.OrgNr == sub.OrgNr {
			continue
		}
		g.otherOrgs = append(g.otherOrgs, e.OrgNr)
		if !e.FleetOwner {
			g.nonFleet = append(g.nonFleet, e.OrgNr)
			continue
		}
		if !e.Accepted(lessee.AgreementLesseeAPI, decisionTime) {
			g.noTerms = append(g.noTerms, e.OrgNr)
			continue
		}
		ds := dels[e.OrgNr]
		if len(ds) == 0 {
			g.undelegated = append(g.undelegated, e.OrgNr)
			continue
		}
		var good *lessee.Delegation
		for k := range ds {
			d := &ds[k]
			if d.RevokedAt == nil && d.ValidTo.IsZero() && !changesStart.Before(d.ValidFrom) {
				good = d
			}
		}
		switch {
		case good != nil && thirdParty:
			scopes[e.OrgNr] = &scope{fleetOwner: e.OrgNr, onBehalfOf: e.OrgNr, validFrom: good.ValidFrom}
		case good == nil && neverValidAfter(ds, changesStart):
			g.expired = append(g.expired, e.OrgNr)
		}
	}
	for _, v := range slices.Sorted(mapKeys(scopes)) {
		g.scopes = append(g.scopes, scopes[v])
	}

	for i := range reg.Vehicles {
		v := &reg.Vehicles[i]
		sc := scopes[v.Owner]
		if sc == nil {
			if o := byOrg[v.Owner]; o != nil && o.FleetOwner {
				g.others = append(g.others, *v)
			}
			continue
		}
		s := &vstate{v: v, scope: sc, periods: slices.Clone(v.Periods), cursor: maxDate(day(changesStart, -1), v.OwnerSince)}
		for _, p := range v.Periods {
			s.cursor = maxDate(s.cursor, p.Start, p.End)
		}
		g.pool = append(g.pool, s)
	}
	if len(g.pool) == 0 && cfg.Rows > 0 {
		return nil, fmt.Errorf("generate changes: submitter %s may change no vehicle of the registry (fleet-owner role, terms and delegations)", cfg.Submitter)
	}
	// Each row moves a vehicle's dates on by up to maxStep days; keep them
	// well inside the years dates may have (to 2199).
	perVehicle := cfg.Rows/max(len(g.pool), 1) + 1
	if perVehicle > 50000 {
		return nil, fmt.Errorf("generate changes: %d rows for %d vehicles is too many changes per vehicle; generate a larger registry", cfg.Rows, len(g.pool))
	}
	g.maxStep = min(14, max(1, 50000/perVehicle))
	if !thirdParty {
		// Without the third-party agreement every on_behalf_of fails on
		// terms; the codes behind that check cannot be reached.
		g.undelegated, g.expired, g.nonFleet, g.noTerms = nil, nil, nil, nil
	}
	return g, nil
}

// neverValidAfter reports whether no delegation in ds covers any date from d
// on, so a row for its fleet owner is DELEGATION_EXPIRED.
func neverValidAfter(ds []lessee.Delegation, d lessee.Date) bool {
	for _, dl := range ds {
		if dl.RevokedAt != nil && !dl.RevokedAt.After(decisionTime) {
			continue // revoked in the past: covers nothing
		}
		if dl.ValidTo.IsZero() || !dl.ValidTo.Before(d) {
			return false
		}
	}
	return true
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// LargestFleet returns the orgnr of the fleet owner with the lessee API
// agreement that owns the most vehicles (the first such enterprise on a
// tie), or "" when there is none: the default submitter of WriteChanges.
func (reg Registry) LargestFleet() string {
	count := map[string]int{}
	for _, v := range reg.Vehicles {
		count[v.Owner]++
	}
	best := ""
	for i := range reg.Enterprises {
		e := &reg.Enterprises[i]
		if !e.FleetOwner || !e.Accepted(lessee.AgreementLesseeAPI, decisionTime) {
			continue
		}
		if best == "" || count[e.OrgNr] > count[best] {
			best = e.OrgNr
		}
	}
	return best
}
