package gen

import (
	"strings"

	"github.com/fleetreg/lessee"
)

// This file writes the rows of a change file: the mix of intended
// outcomes, the rows meant to be applied or unchanged, and the filling of a
// record the way people write one.

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
