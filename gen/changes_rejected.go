package gen

import "github.com/fleetreg/lessee"

// This file writes the rows meant to be rejected, one maker per row code
// the registry makes possible.

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
