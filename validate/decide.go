package validate

import (
	"fmt"
	"slices"
	"time"

	"github.com/fleetreg/lessee"
)

// KeysFor names what Decide needs loaded for rows: the distinct VINs and
// registration numbers the rows name, and the submitter plus
// every fleet owner acted for. Each list is sorted, so that storage locks rows
// in one order and concurrent chunks cannot deadlock.
func KeysFor(job Job, rows []lessee.Row) lessee.Keys {
	k := lessee.Keys{Since: map[string]lessee.Date{}}
	if job.Submitter != "" {
		k.OrgNrs = append(k.OrgNrs, job.Submitter)
	}
	for _, r := range rows {
		// A snapshot row rejected on its own fields still names its
		// vehicle (see ParseSnapshotRow): it is loaded with its whole
		// history, which a rare rejected row may cost, so that a later row
		// naming it again is a duplicate. A change file's rejected row
		// names nothing.
		since := earliestDate(r.Change)
		if v := r.Change.VIN; v != "" {
			k.VINs = append(k.VINs, v)
			k.Since[v] = earlier(k.Since, v, since)
		}
		if reg := r.Change.RegistrationNumber; reg != "" {
			k.RegNumbers = append(k.RegNumbers, reg)
			k.Since[reg] = earlier(k.Since, reg, since)
		}
		if f := r.Change.OnBehalfOf; f != "" {
			k.OrgNrs = append(k.OrgNrs, f)
		}
	}
	for _, l := range []*[]string{&k.VINs, &k.RegNumbers, &k.OrgNrs} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return k
}

// earliestDate is the earliest date a change gives, or the zero Date (all
// history) when it gives none.
func earliestDate(c lessee.Change) lessee.Date {
	switch {
	case c.StartDate.IsZero():
		return c.EndDate
	case c.EndDate.IsZero():
		return c.StartDate
	}
	return min(c.StartDate, c.EndDate)
}

// earlier returns the earlier of since[key] (when present) and d.
func earlier(since map[string]lessee.Date, key string, d lessee.Date) lessee.Date {
	if prev, ok := since[key]; ok {
		return min(prev, d)
	}
	return d
}

// Decide judges rows in order and returns one Outcome per row, with the row's
// Index, Line and Echo, and the registry writes of the applied ones. A row
// with a Problem is rejected with its code. Other rows pass, in order, the
// authority checks (terms, fleet-owner role, delegation), the vehicle checks
// (exists, registration number and VIN agree, owned by the fleet owner on the
// effective date) and the lessee state. An applied row changes st in place,
// so later rows see it; the writes are the final state of every period the
// rows opened or closed, so storage only persists them.
//
// Messages never name another enterprise's vehicle owner or another lessee.
func Decide(cfg Config, job Job, st *lessee.State, rows []lessee.Row) lessee.Decision {
	if st == nil {
		st = lessee.NewState()
	}
	return decideRows(st, rows, func(r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet) {
		decideRow(job, st, r, o, w)
	}, nil)
}

// decideRows is the loop Decide and DecideSnapshot share: one Outcome per
// row, in order, carrying the row's Index, Line and Echo; a row with a
// Problem is rejected with it, and any other is left to decide, which
// changes st and notes the periods it writes in w.
func decideRows(st *lessee.State, rows []lessee.Row, decide func(r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet), rejected func(r lessee.Row)) lessee.Decision {
	out := make([]lessee.Outcome, 0, len(rows))
	var w lessee.WriteSet
	for _, r := range rows {
		o := lessee.Outcome{Result: lessee.Result{Index: r.Index, Line: r.Line, Echo: r.Echo}}
		if r.Problem != nil {
			o.Status, o.Code, o.Message = lessee.StatusRejected, r.Problem.Code, r.Problem.Message
			if rejected != nil {
				rejected(r)
			}
		} else {
			decide(r, &o, &w)
		}
		out = append(out, o)
	}
	return lessee.Decision{Outcomes: out, Writes: w.Writes(st)}
}

// reject is a failed check: the code and the message for the receipt.
type reject struct {
	code lessee.Code
	msg  string
}

func rejectf(code lessee.Code, format string, args ...any) *reject {
	return &reject{code: code, msg: fmt.Sprintf(format, args...)}
}

func decideRow(job Job, st *lessee.State, r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet) {
	ch := r.Change
	f := ch.OnBehalfOf
	if f == "" {
		f = job.Submitter
	}
	d := ch.EffectiveDate()

	rej := authority(job, st, f, d)
	var v *lessee.Vehicle
	if rej == nil {
		v, rej = vehicle(st, ch, f, d)
	}
	if rej == nil {
		switch ch.Operation {
		case lessee.OpAdd:
			rej = add(job, v, r, f, o, w)
		case lessee.OpRemove:
			rej = remove(job, v, r, f, o, w)
		default:
			rej = rejectf(lessee.CodeInvalidOperation, "operation: is not a known operation; write add or remove")
		}
	}
	if rej != nil {
		o.Status, o.Code, o.Message = lessee.StatusRejected, rej.code, rej.msg
	}
}

// authority checks that the submitter may act for fleet owner f on date d.
func authority(job Job, st *lessee.State, f string, d lessee.Date) *reject {
	s := st.Enterprises[job.Submitter]
	if f == job.Submitter {
		if s == nil || !s.Accepted(lessee.AgreementLesseeAPI, job.Now) {
			hint := "accept it before changing lessees of your own vehicles"
			if s != nil && s.Accepted(lessee.AgreementThirdParty, job.Now) {
				hint += ", or fill on_behalf_of to act for a fleet owner"
			}
			return rejectf(lessee.CodeTermsNotAccepted, "the submitter has not accepted the lessee API agreement; %s", hint)
		}
		if !s.FleetOwner {
			return rejectf(lessee.CodeNotFleetOwner,
				"the submitter does not hold the fleet-owner role, which changing lessees needs; to act for a fleet owner, fill on_behalf_of")
		}
		return nil
	}

	if s == nil || !s.Accepted(lessee.AgreementThirdParty, job.Now) {
		return rejectf(lessee.CodeTermsNotAccepted,
			"on_behalf_of: the submitter has not accepted the third-party agreement, which acting for a fleet owner needs; accept it first")
	}
	fe := st.Enterprises[f]
	if fe == nil || !fe.FleetOwner {
		return rejectf(lessee.CodeNotFleetOwner,
			"on_behalf_of: %s does not hold the fleet-owner role; check the organisation number", f)
	}
	if !fe.Accepted(lessee.AgreementLesseeAPI, job.Now) {
		return rejectf(lessee.CodeTermsNotAccepted,
			"on_behalf_of: the fleet owner %s has not accepted the lessee API agreement; ask them to accept it", f)
	}
	dels := st.Delegations[[2]string{f, job.Submitter}]
	if len(dels) == 0 {
		return rejectf(lessee.CodeNoDelegation,
			"on_behalf_of: the fleet owner %s has not delegated the lessee right to the submitter; ask them to delegate it", f)
	}
	best, why := 0, ""
	for _, dl := range dels {
		rank, w := delegationFault(dl, d, job)
		if rank == 0 {
			return nil
		}
		if rank > best {
			best, why = rank, w
		}
	}
	return rejectf(lessee.CodeDelegationExpired, "on_behalf_of: the delegation from fleet owner %s %s", f, why)
}

// delegationFault says why dl does not cover date d, ranked so that the most
// telling reason among several delegations is reported: a revocation explains
// more than dates do, and "not yet valid" more than "expired", since waiting
// fixes it. Rank 0 means dl covers d.
func delegationFault(dl lessee.Delegation, d lessee.Date, job Job) (int, string) {
	if dl.RevokedAt != nil {
		rd := lessee.DateOf(*dl.RevokedAt)
		if !dl.RevokedAt.After(job.Now) {
			return 3, fmt.Sprintf("was revoked on %s; ask the fleet owner to delegate again", rd)
		}
		if !d.Before(rd) {
			return 3, fmt.Sprintf("is revoked from %s, before the effective date %s", rd, d)
		}
	}
	if !dl.ValidFrom.IsZero() && d.Before(dl.ValidFrom) {
		return 2, fmt.Sprintf("is not yet valid on the effective date %s; it starts on %s", d, dl.ValidFrom)
	}
	if !dl.ValidTo.IsZero() && dl.ValidTo.Before(d) {
		return 1, fmt.Sprintf("has expired: it ended on %s, before the effective date %s", dl.ValidTo, d)
	}
	return 0, ""
}

// vehicle finds the row's vehicle and checks that fleet owner f owns it on d.
func vehicle(st *lessee.State, ch lessee.Change, f string, d lessee.Date) (*lessee.Vehicle, *reject) {
	v, rej := findVehicle(st, ch)
	if rej == nil {
		rej = owns(v, f, d)
	}
	if rej != nil {
		return nil, rej
	}
	return v, nil
}

// findVehicle finds the vehicle the change names by its registration
// number and VIN, which must agree when both are given.
func findVehicle(st *lessee.State, ch lessee.Change) (*lessee.Vehicle, *reject) {
	var byReg, byVIN *lessee.Vehicle
	if ch.RegistrationNumber != "" {
		if vin, ok := st.ByReg[ch.RegistrationNumber]; ok {
			byReg = st.Vehicles[vin]
		}
	}
	if ch.VIN != "" {
		byVIN = st.Vehicles[ch.VIN]
	}
	var v *lessee.Vehicle
	switch {
	case ch.RegistrationNumber != "" && ch.VIN != "":
		if byReg == nil && byVIN == nil {
			return nil, rejectf(lessee.CodeVehicleNotFound,
				"vin: no vehicle with this vin or registration_number is registered; check both")
		}
		if byReg != byVIN {
			return nil, rejectf(lessee.CodeRegVINMismatch,
				"registration_number: does not belong to the vehicle with this vin; check both, or leave one empty")
		}
		v = byVIN
	case ch.VIN != "":
		if byVIN == nil {
			return nil, rejectf(lessee.CodeVehicleNotFound, "vin: no vehicle with this vin is registered; check it")
		}
		v = byVIN
	default:
		if byReg == nil {
			return nil, rejectf(lessee.CodeVehicleNotFound,
				"registration_number: no vehicle with this registration number is registered; check it, or give the vin")
		}
		v = byReg
	}
	return v, nil
}

// owns checks that fleet owner f owns v on d.
func owns(v *lessee.Vehicle, f string, d lessee.Date) *reject {
	// Say nothing about who does own it: that is another enterprise's business.
	if v.Owner != f {
		return rejectf(lessee.CodeNotOwner, "the vehicle is not registered to fleet owner %s; check the vehicle and on_behalf_of", f)
	}
	if d.Before(v.OwnerSince) {
		return rejectf(lessee.CodeNotOwner,
			"fleet owner %s owns the vehicle only from %s, after the effective date %s", f, v.OwnerSince, d)
	}
	return nil
}

// openPeriod returns the index of the period that counts as open on d: the
// latest-starting one that has begun by d, else the earliest one starting
// after d; -1 when none is open.
func openPeriod(v *lessee.Vehicle, d lessee.Date) int {
	found := -1
	for i, p := range v.Periods {
		if !p.OpenOn(d) {
			continue
		}
		if found < 0 {
			found = i
			continue
		}
		q := v.Periods[found]
		switch {
		case !d.Before(p.Start) && (d.Before(q.Start) || !p.Start.Before(q.Start)):
			found = i // p has begun and starts later than q, or q has not begun
		case d.Before(p.Start) && d.Before(q.Start) && p.Start.Before(q.Start):
			found = i // neither has begun; p comes first
		}
	}
	return found
}

// endedOn returns the index of the latest-starting period that ends exactly on
// d, of lesseeID or of any lessee when lesseeID is "", or -1.
func endedOn(v *lessee.Vehicle, d lessee.Date, lesseeID string) int {
	found := -1
	for i, p := range v.Periods {
		if p.End != d || (lesseeID != "" && p.LesseeID != lesseeID) {
			continue
		}
		if found < 0 || !p.Start.Before(v.Periods[found].Start) {
			found = i
		}
	}
	return found
}

func until(end lessee.Date) string {
	if end.IsZero() {
		return "with no end date"
	}
	return "to " + string(end)
}

func add(job Job, v *lessee.Vehicle, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	ch := r.Change
	if i := openPeriod(v, ch.StartDate); i >= 0 {
		p := v.Periods[i]
		switch {
		case p.LesseeID != ch.LesseeID:
			return rejectf(lessee.CodeLesseeConflict,
				"the vehicle has another lessee whose period is still open on %s; remove that lessee first (a remove row earlier in the file works)", ch.StartDate)
		case p.Start != ch.StartDate:
			return rejectf(lessee.CodeLesseeConflict,
				"start_date: this lessee is already registered on the vehicle from %s; to change the start, remove the lessee and add it again", p.Start)
		case !ch.EndDate.IsZero() && ch.EndDate != p.End:
			return rejectf(lessee.CodeLesseeConflict,
				"end_date: this lessee is registered from %s %s; to end the period, use remove", p.Start, until(p.End))
		}
		o.Status = lessee.StatusUnchanged
		o.Message = fmt.Sprintf("the registry already has this lessee from %s; nothing changed", p.Start)
		return nil
	}
	p := lessee.Period{
		ID:         lessee.ChangeID(job.ID, r.Index),
		LesseeID:   ch.LesseeID,
		LesseeName: ch.LesseeName,
		Start:      ch.StartDate,
		End:        ch.EndDate,
	}
	v.Periods = append(v.Periods, p)
	w.Note(v.VIN, p.ID, true, r.Line)
	applied(job, r, v, f, lessee.OpAdd, nil, p, o)
	o.Message = fmt.Sprintf("lessee added from %s %s", p.Start, until(p.End))
	return nil
}

func remove(job Job, v *lessee.Vehicle, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	ch := r.Change
	d := ch.EndDate
	open := openPeriod(v, d)
	matches := open >= 0 && (ch.LesseeID == "" || v.Periods[open].LesseeID == ch.LesseeID)

	// A period that has begun is closed, even if another ended on d. Failing
	// that, a period already ending on d makes the row unchanged, so that a
	// file doing remove then add on one day runs again harmlessly.
	if matches && v.Periods[open].Start.Before(d) {
		return closePeriod(job, v, open, r, f, o, w)
	}
	if i := endedOn(v, d, ch.LesseeID); i >= 0 {
		o.Status = lessee.StatusUnchanged
		o.Message = fmt.Sprintf("the lessee period already ends on %s; nothing changed", d)
		return nil
	}
	switch {
	case matches:
		// d is on or before the start: closing would leave an empty or
		// negative period, and a re-run of add-then-remove would add again.
		return rejectf(lessee.CodeEndBeforeStart,
			"end_date: %s is not after the start of the open lessee period (%s); correct end_date", d, v.Periods[open].Start)
	case open >= 0:
		return rejectf(lessee.CodeLesseeMismatch,
			"lessee_id: does not match the vehicle's active lessee; give the active lessee's id, or leave lessee_id empty")
	}
	return rejectf(lessee.CodeNoActiveLessee, "the vehicle has no active lessee on %s; there is nothing to remove", d)
}

func closePeriod(job Job, v *lessee.Vehicle, i int, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	before := v.Periods[i]
	v.Periods[i].End = r.Change.EndDate
	w.Note(v.VIN, before.ID, false, r.Line)
	applied(job, r, v, f, lessee.OpRemove, &before, v.Periods[i], o)
	o.Message = fmt.Sprintf("lessee removed with end date %s", r.Change.EndDate)
	return nil
}

// applied fills o for a row that changes the registry.
func applied(job Job, r lessee.Row, v *lessee.Vehicle, f string, op lessee.Operation, before *lessee.Period, after lessee.Period, o *lessee.Outcome) {
	o.Status = lessee.StatusApplied
	o.ChangeID = lessee.ChangeID(job.ID, r.Index)
	o.Operation = op
	o.VIN = v.VIN
	o.RegistrationNumber = v.RegistrationNumber
	o.OnBehalfOf = f
	o.Before = before
	o.After = &after
}

// CheckSubmitter is the file-level authority check: a submitter that has
// accepted no agreement at all by now (nil: unknown to the registry) has
// its whole file refused with TERMS_NOT_ACCEPTED. Each row then meets the
// check of the agreement it needs (see Decide).
func CheckSubmitter(e *lessee.Enterprise, orgnr string, now time.Time) *lessee.Error {
	if e != nil && e.AcceptedAny(now) {
		return nil
	}
	return lessee.Refusef(lessee.CodeTermsNotAccepted, 0,
		"organisation %s has not accepted the lessee API agreement or the third-party agreement", orgnr)
}
