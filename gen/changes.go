package gen

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
)

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

// row fills g.rec with the next row and returns its intended outcome.
func (g *changeGen) row() string {
	clear(g.rec[:])
	p := g.r.Float64()
	switch {
	case p < g.cfg.Rejected:
		return string(g.rejected())
	case p < g.cfg.Rejected+g.cfg.Unchanged:
		if g.unchanged() {
			return string(lessee.StatusUnchanged)
		}
	}
	g.applied()
	return string(lessee.StatusApplied)
}

func (g *changeGen) pick() *vstate { return g.pool[g.r.IntN(len(g.pool))] }

// next returns a date after everything s has seen.
func (g *changeGen) next(s *vstate) lessee.Date { return day(s.cursor, 1+g.r.IntN(g.maxStep)) }

// applied writes a remove of the open period or, when none is open, an add.
func (g *changeGen) applied() {
	s := g.pick()
	d := g.next(s)
	if i := s.openOn(d); i >= 0 {
		id := ""
		if g.r.Float64() < 0.7 {
			id = s.periods[i].LesseeID
		}
		g.remove(s, id, d)
		s.periods[i].End = d
		closed := s.periods[i]
		s.removed = &closed
	} else {
		id, name := g.newLessee(s)
		var end lessee.Date
		if g.r.Float64() < 0.15 {
			end = day(d, 60+g.r.IntN(340))
		}
		g.add(s, id, name, d, end)
		s.periods = append(s.periods, lessee.Period{LesseeID: id, LesseeName: name, Start: d, End: end})
		s.removed = nil
	}
	s.cursor = d
}

// unchanged writes a row the registry already holds: the remove the
// vehicle's last applied row made, or the add of its open period. It
// reports false when the vehicle drawn offers neither.
func (g *changeGen) unchanged() bool {
	s := g.pick()
	if p := s.removed; p != nil {
		id := ""
		if g.r.Float64() < 0.5 {
			id = p.LesseeID
		}
		g.remove(s, id, p.End)
		return true
	}
	i := s.openOn(s.cursor)
	if i < 0 {
		return false
	}
	p := s.periods[i]
	// The add is judged on its start date, which must lie in the delegation
	// and the ownership.
	if p.Start.Before(s.scope.validFrom) || p.Start.Before(s.v.OwnerSince) {
		return false
	}
	name := p.LesseeName
	if name == "" {
		name = personName(g.r)
	}
	g.add(s, p.LesseeID, name, p.Start, p.End)
	return true
}

// rejected writes a row meant to be rejected and returns its code.
func (g *changeGen) rejected() lessee.Code {
	makers := []func() (lessee.Code, bool){
		g.invalidOperation, g.invalidVIN, g.invalidRegNumber, g.invalidLesseeID, g.invalidDate,
		g.missingField, g.endBeforeStart, g.vehicleNotFound, g.notOwner, g.lesseeConflict,
		g.noActiveLessee, g.lesseeMismatch, g.regVINMismatch, g.noDelegation, g.delegationExpired,
		g.notFleetOwner, g.termsNotAccepted,
	}
	for range 20 {
		clear(g.rec[:])
		if code, ok := makers[g.r.IntN(len(makers))](); ok {
			return code
		}
	}
	clear(g.rec[:])
	code, _ := g.invalidOperation()
	return code
}

func (g *changeGen) invalidOperation() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	g.add(s, id, name, g.next(s), "")
	g.rec[lessee.ColOperation] = []string{"update", "endre", "replace", "ad"}[g.r.IntN(4)]
	return lessee.CodeInvalidOperation, true
}

func (g *changeGen) invalidVIN() (lessee.Code, bool) {
	s := g.pick()
	g.remove(s, "", g.next(s))
	b := []byte(s.v.VIN)
	switch g.r.IntN(3) {
	case 0:
		b[3+g.r.IntN(6)] = "IOQ"[g.r.IntN(3)]
	case 1:
		b = b[:16]
	default:
		b = append(b, '7')
	}
	g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = "", string(b)
	return lessee.CodeInvalidVIN, true
}

func (g *changeGen) invalidRegNumber() (lessee.Code, bool) {
	s := g.pick()
	g.remove(s, "", g.next(s))
	bad := s.v.RegistrationNumber + "X9"
	if g.r.IntN(2) == 0 {
		bad = s.v.RegistrationNumber[:2] + "/" + s.v.RegistrationNumber[2:]
	}
	g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = bad, ""
	return lessee.CodeInvalidRegNumber, true
}

func (g *changeGen) invalidLesseeID() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	b := []byte(id)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1+byte(g.r.IntN(9)))%10 // a wrong check digit
	g.add(s, string(b), name, g.next(s), "")
	return lessee.CodeInvalidLesseeID, true
}

func (g *changeGen) invalidDate() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	g.add(s, id, name, g.next(s), "")
	g.rec[lessee.ColStartDate] = []string{"2025-02-30", "31.13.2025", "2025/08/01", "01.08.25", "next monday"}[g.r.IntN(5)]
	return lessee.CodeInvalidDate, true
}

func (g *changeGen) missingField() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	g.add(s, id, name, g.next(s), "")
	if g.r.IntN(2) == 0 {
		g.rec[lessee.ColLesseeID] = ""
	} else {
		g.rec[lessee.ColStartDate] = ""
	}
	return lessee.CodeMissingField, true
}

func (g *changeGen) endBeforeStart() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	d := g.next(s)
	g.add(s, id, name, d, day(d, -1-g.r.IntN(30)))
	return lessee.CodeEndBeforeStart, true
}

func (g *changeGen) vehicleNotFound() (lessee.Code, bool) {
	s := g.pick()
	id, name := g.newLessee(s)
	g.add(s, id, name, g.next(s), "")
	g.unknownN++
	g.rec[lessee.ColRegistrationNumber] = ""
	g.rec[lessee.ColVIN] = vin(g.r, unknownWMI, g.unknownN, 0)
	return lessee.CodeVehicleNotFound, true
}

func (g *changeGen) notOwner() (lessee.Code, bool) {
	s := g.pick()
	if len(g.others) > 0 {
		o := &g.others[g.r.IntN(len(g.others))]
		id, name := g.newLessee(s)
		g.add(s, id, name, g.next(s), "")
		g.vehicle(o)
		return lessee.CodeNotOwner, true
	}
	// Every vehicle is the submitter's: act before it owned one.
	if s.scope.onBehalfOf != "" || s.v.OwnerSince <= firstOwnerDate {
		return "", false
	}
	id, name := g.newLessee(s)
	g.add(s, id, name, day(s.v.OwnerSince, -1-g.r.IntN(30)), "")
	return lessee.CodeNotOwner, true
}

func (g *changeGen) lesseeConflict() (lessee.Code, bool) {
	s := g.pick()
	d := g.next(s)
	if s.openOn(d) < 0 {
		return "", false
	}
	id, name := g.newLessee(s)
	g.add(s, id, name, d, "")
	return lessee.CodeLesseeConflict, true
}

func (g *changeGen) noActiveLessee() (lessee.Code, bool) {
	s := g.pick()
	d := g.next(s)
	if s.openOn(d) >= 0 || s.endsOn(d) {
		return "", false
	}
	g.remove(s, "", d)
	return lessee.CodeNoActiveLessee, true
}

func (g *changeGen) lesseeMismatch() (lessee.Code, bool) {
	s := g.pick()
	d := g.next(s)
	if s.openOn(d) < 0 {
		return "", false
	}
	id, _ := g.newLessee(s)
	g.remove(s, id, d)
	return lessee.CodeLesseeMismatch, true
}

func (g *changeGen) regVINMismatch() (lessee.Code, bool) {
	s, t := g.pick(), g.pick()
	if s == t || s.scope != t.scope {
		return "", false
	}
	g.remove(s, "", g.next(s))
	g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = s.v.RegistrationNumber, t.v.VIN
	return lessee.CodeRegVINMismatch, true
}

// actFor writes an add for fleet owner f, whose authority check fails
// before the vehicle is looked at.
func (g *changeGen) actFor(f string) {
	s := g.pick()
	id, name := g.newLessee(s)
	g.add(s, id, name, g.next(s), "")
	g.rec[lessee.ColOnBehalfOf] = f
}

func (g *changeGen) noDelegation() (lessee.Code, bool) {
	if len(g.undelegated) == 0 {
		return "", false
	}
	g.actFor(g.undelegated[g.r.IntN(len(g.undelegated))])
	return lessee.CodeNoDelegation, true
}

func (g *changeGen) delegationExpired() (lessee.Code, bool) {
	if len(g.expired) == 0 {
		return "", false
	}
	g.actFor(g.expired[g.r.IntN(len(g.expired))])
	return lessee.CodeDelegationExpired, true
}

func (g *changeGen) notFleetOwner() (lessee.Code, bool) {
	if len(g.nonFleet) == 0 {
		return "", false
	}
	g.actFor(g.nonFleet[g.r.IntN(len(g.nonFleet))])
	return lessee.CodeNotFleetOwner, true
}

func (g *changeGen) termsNotAccepted() (lessee.Code, bool) {
	if g.submitter.Accepted(lessee.AgreementThirdParty, decisionTime) {
		if len(g.noTerms) == 0 {
			return "", false
		}
		g.actFor(g.noTerms[g.r.IntN(len(g.noTerms))])
		return lessee.CodeTermsNotAccepted, true
	}
	// Acting for anyone else needs the third-party agreement.
	if len(g.otherOrgs) == 0 {
		return "", false
	}
	g.actFor(g.otherOrgs[g.r.IntN(len(g.otherOrgs))])
	return lessee.CodeTermsNotAccepted, true
}

// newLessee draws a lessee the vehicle has never had.
func (g *changeGen) newLessee(s *vstate) (id, name string) {
	for range 100 {
		var err error
		// A failed draw is astronomically unlikely; draw again.
		if id, err = lesseeID(g.r, g.cfg.Synthetic); err == nil && !s.hasLessee(id) {
			break
		}
	}
	if len(id) == 9 {
		return id, namePrefixes[g.r.IntN(len(namePrefixes))] + " " + nameKinds[g.r.IntN(len(nameKinds))] + " AS"
	}
	return id, personName(g.r)
}

// add fills the record of an add row.
func (g *changeGen) add(s *vstate, id, name string, start, end lessee.Date) {
	op := "add"
	switch p := g.r.Float64(); {
	case p < 0.05:
		op = "OPPRETTE"
	case p < 0.08:
		op = "legg_til"
	}
	g.rec[lessee.ColOperation] = op
	g.vehicle(s.v)
	g.rec[lessee.ColLesseeID] = id
	g.rec[lessee.ColLesseeName] = name
	g.rec[lessee.ColStartDate] = g.date(start)
	g.rec[lessee.ColEndDate] = g.date(end)
	g.rec[lessee.ColOnBehalfOf] = s.scope.onBehalfOf
}

// remove fills the record of a remove row.
func (g *changeGen) remove(s *vstate, id string, end lessee.Date) {
	op := "remove"
	switch p := g.r.Float64(); {
	case p < 0.05:
		op = "FJERNE"
	case p < 0.08:
		op = "AVSLUTTE"
	}
	g.rec[lessee.ColOperation] = op
	g.vehicle(s.v)
	g.rec[lessee.ColLesseeID] = id
	g.rec[lessee.ColEndDate] = g.date(end)
	g.rec[lessee.ColOnBehalfOf] = s.scope.onBehalfOf
}

// vehicle names v by registration number, VIN or both, written the ways
// people write them.
func (g *changeGen) vehicle(v *lessee.Vehicle) {
	reg := v.RegistrationNumber
	switch p := g.r.Float64(); {
	case p < 0.1 && len(reg) > 2:
		reg = reg[:2] + " " + reg[2:]
	case p < 0.15:
		reg = strings.ToLower(reg)
	}
	switch p := g.r.Float64(); {
	case p < 0.5:
		g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = reg, v.VIN
	case p < 0.8:
		g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = reg, ""
	default:
		g.rec[lessee.ColRegistrationNumber], g.rec[lessee.ColVIN] = "", v.VIN
	}
}

// date writes d as YYYY-MM-DD or, now and then, as DD.MM.YYYY.
func (g *changeGen) date(d lessee.Date) string {
	if d == "" || len(d) != 10 || g.r.Float64() >= 0.15 {
		return string(d)
	}
	return string(d[8:10]) + "." + string(d[5:7]) + "." + string(d[0:4])
}
