package validate

import (
	"slices"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
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
// They are written in the job's language, those of rows rejected on their
// own fields too (whatever language ParseRow wrote them in).
func Decide(cfg Config, job Job, st *lessee.State, rows []lessee.Row) lessee.Decision {
	if st == nil {
		st = lessee.NewState()
	}
	return decideRows(job, st, rows, func(r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet) {
		decideRow(job, st, r, o, w)
	}, nil)
}

// decideRows is the loop Decide and DecideSnapshot share: one Outcome per
// row, in order, carrying the row's Index, Line and Echo; a row with a
// Problem is rejected with it, and any other is left to decide, which
// changes st and notes the periods it writes in w.
func decideRows(job Job, st *lessee.State, rows []lessee.Row, decide func(r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet), rejected func(r lessee.Row)) lessee.Decision {
	out := make([]lessee.Outcome, 0, len(rows))
	var w lessee.WriteSet
	for _, r := range rows {
		o := lessee.Outcome{Result: lessee.Result{Index: r.Index, Line: r.Line, Echo: r.Echo}}
		if r.Problem != nil {
			o.Status, o.Code, o.Message = lessee.StatusRejected, r.Problem.Code, problemMessage(job.Language, r.Problem)
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

// reject is a failed check: the code and the message for the receipt,
// written in the job's language when the outcome is filled (see fail).
type reject struct {
	code lessee.Code
	text lessee.Text
}

func rejectf(code lessee.Code, key message.Key, args ...any) *reject {
	return &reject{code: code, text: message.New(key, args...)}
}

// rejectField is rejectf about column col.
func rejectField(code lessee.Code, col lessee.Column, key message.Key, args ...any) *reject {
	return &reject{code: code, text: message.Field(col, key, args...)}
}

// fail fills o for a row rejected with rej.
func fail(job Job, o *lessee.Outcome, rej *reject) {
	o.Status, o.Code, o.Message = lessee.StatusRejected, rej.code, message.Render(job.Language, rej.text)
}

// say sets o's message to key with args, in the job's language.
func say(job Job, o *lessee.Outcome, key message.Key, args ...any) {
	o.Message = message.Format(job.Language, key, args...)
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
			rej = add(job, v, r, f, o, w, false)
		case lessee.OpRemove:
			rej = remove(job, v, r, f, o, w)
		default:
			rej = rejectField(lessee.CodeInvalidOperation, lessee.ColOperation, message.OperationNotKnown)
		}
	}
	if rej != nil {
		fail(job, o, rej)
	}
}

// authority checks that the submitter may act for fleet owner f on date d.
func authority(job Job, st *lessee.State, f string, d lessee.Date) *reject {
	s := st.Enterprises[job.Submitter]
	if f == job.Submitter {
		if s == nil || !s.Accepted(lessee.AgreementLesseeAPI, job.Now) {
			if s != nil && s.Accepted(lessee.AgreementThirdParty, job.Now) {
				return rejectf(lessee.CodeTermsNotAccepted, message.TermsOwnOrThirdParty)
			}
			return rejectf(lessee.CodeTermsNotAccepted, message.TermsOwn)
		}
		if !s.FleetOwner {
			return rejectf(lessee.CodeNotFleetOwner, message.NotFleetOwnerSelf)
		}
		return nil
	}

	if s == nil || !s.Accepted(lessee.AgreementThirdParty, job.Now) {
		return rejectField(lessee.CodeTermsNotAccepted, lessee.ColOnBehalfOf, message.TermsThirdParty)
	}
	fe := st.Enterprises[f]
	if fe == nil || !fe.FleetOwner {
		return rejectField(lessee.CodeNotFleetOwner, lessee.ColOnBehalfOf, message.NotFleetOwner, f)
	}
	if !fe.Accepted(lessee.AgreementLesseeAPI, job.Now) {
		return rejectField(lessee.CodeTermsNotAccepted, lessee.ColOnBehalfOf, message.FleetOwnerTerms, f)
	}
	dels := st.Delegations[[2]string{f, job.Submitter}]
	if len(dels) == 0 {
		return rejectField(lessee.CodeNoDelegation, lessee.ColOnBehalfOf, message.NoDelegation, f)
	}
	best := 0
	var why *reject
	for _, dl := range dels {
		rank, w := delegationFault(dl, d, f, job)
		if rank == 0 {
			return nil
		}
		if rank > best {
			best, why = rank, w
		}
	}
	return why
}

// delegationFault says why dl does not cover date d, ranked so that the most
// telling reason among several delegations is reported: a revocation explains
// more than dates do, and "not yet valid" more than "expired", since waiting
// fixes it. Rank 0 means dl covers d. f is the fleet owner, named in the
// rejection.
func delegationFault(dl lessee.Delegation, d lessee.Date, f string, job Job) (int, *reject) {
	expired := func(key message.Key, args ...any) *reject {
		return rejectField(lessee.CodeDelegationExpired, lessee.ColOnBehalfOf, key, append([]any{f}, args...)...)
	}
	if dl.RevokedAt != nil {
		rd := lessee.DateOf(*dl.RevokedAt)
		if !dl.RevokedAt.After(job.Now) {
			return 3, expired(message.DelegationRevoked, rd)
		}
		if !d.Before(rd) {
			return 3, expired(message.DelegationRevokedFrom, rd, d)
		}
	}
	if !dl.ValidFrom.IsZero() && d.Before(dl.ValidFrom) {
		return 2, expired(message.DelegationNotYetValid, d, dl.ValidFrom)
	}
	if !dl.ValidTo.IsZero() && dl.ValidTo.Before(d) {
		return 1, expired(message.DelegationExpired, dl.ValidTo, d)
	}
	return 0, nil
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
			return nil, rejectField(lessee.CodeVehicleNotFound, lessee.ColVIN, message.VehicleNotFoundBoth)
		}
		if byReg != byVIN {
			return nil, rejectField(lessee.CodeRegVINMismatch, lessee.ColRegistrationNumber, message.RegVINMismatch)
		}
		v = byVIN
	case ch.VIN != "":
		if byVIN == nil {
			return nil, rejectField(lessee.CodeVehicleNotFound, lessee.ColVIN, message.VehicleNotFoundVIN)
		}
		v = byVIN
	default:
		if byReg == nil {
			return nil, rejectField(lessee.CodeVehicleNotFound, lessee.ColRegistrationNumber, message.VehicleNotFoundReg)
		}
		v = byReg
	}
	return v, nil
}

// owns checks that fleet owner f owns v on d.
func owns(v *lessee.Vehicle, f string, d lessee.Date) *reject {
	// Say nothing about who does own it: that is another enterprise's business.
	if v.Owner != f {
		return rejectf(lessee.CodeNotOwner, message.NotOwner, f)
	}
	if d.Before(v.OwnerSince) {
		return rejectf(lessee.CodeNotOwner, message.NotOwnerYet, f, v.OwnerSince, d)
	}
	return nil
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

// add records the period of r's change, from its start date up to, not
// including, its end date (none: open-ended). It is unchanged when the
// lessee already has a period from that start (ending on that end, when the
// row gives one), and a LESSEE_CONFLICT when it would overlap any period on
// file, whether in force on the start date or beginning later: a short lease
// before a later one, or history before a lease in force, is recorded.
// snapshot says the change is a snapshot row's, which has no end date to
// correct; it only changes the advice of a conflict.
func add(job Job, v *lessee.Vehicle, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet, snapshot bool) *reject {
	ch := r.Change
	if i := sameStart(v, ch.LesseeID, ch.StartDate, ch.EndDate); i >= 0 {
		p := v.Periods[i]
		switch {
		case !ch.EndDate.IsZero() && ch.EndDate != p.End && p.End.IsZero():
			return rejectField(lessee.CodeLesseeConflict, lessee.ColEndDate, message.ConflictEndOpen, p.Start)
		case !ch.EndDate.IsZero() && ch.EndDate != p.End:
			return rejectField(lessee.CodeLesseeConflict, lessee.ColEndDate, message.ConflictEndTo, p.Start, p.End)
		}
		o.Status = lessee.StatusUnchanged
		say(job, o, message.AddUnchanged, p.Start)
		return nil
	}
	if ps := overlappingAll(v.Periods, ch.StartDate, ch.EndDate); len(ps) > 0 {
		return overlapConflict(ps, ch.StartDate, snapshot)
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
	if p.End.IsZero() {
		say(job, o, message.AddedOpen, p.Start)
	} else {
		say(job, o, message.AddedTo, p.Start, p.End)
	}
	return nil
}

func remove(job Job, v *lessee.Vehicle, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	ch := r.Change
	d := ch.EndDate
	// Only the period in force on d is ended: one that begins after d is
	// not the vehicle's lessee then, and ending it there would make it end
	// before it starts.
	open := inForce(v, d)
	matches := open >= 0 && (ch.LesseeID == "" || v.Periods[open].LesseeID == ch.LesseeID)

	// A period that has begun is closed, even if another ended on d. Failing
	// that, a period already ending on d makes the row unchanged, so that a
	// file doing remove then add on one day runs again harmlessly.
	if matches && v.Periods[open].Start.Before(d) {
		return closePeriod(job, v, open, r, f, o, w)
	}
	if i := endedOn(v, d, ch.LesseeID); i >= 0 {
		o.Status = lessee.StatusUnchanged
		say(job, o, message.RemoveUnchanged, d)
		return nil
	}
	switch {
	case matches:
		// The period starts on d: closing it would leave an empty period,
		// and a re-run of add-then-remove would add again.
		return rejectField(lessee.CodeEndBeforeStart, lessee.ColEndDate, message.RemoveEndBeforeStart, d, v.Periods[open].Start)
	case open >= 0:
		return rejectField(lessee.CodeLesseeMismatch, lessee.ColLesseeID, message.LesseeMismatch)
	}
	return rejectf(lessee.CodeNoActiveLessee, message.NoActiveLessee, d)
}

func closePeriod(job Job, v *lessee.Vehicle, i int, r lessee.Row, f string, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	before := v.Periods[i]
	v.Periods[i].End = r.Change.EndDate
	w.Note(v.VIN, before.ID, false, r.Line)
	applied(job, r, v, f, lessee.OpRemove, &before, v.Periods[i], o)
	say(job, o, message.Removed, r.Change.EndDate)
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
// check of the agreement it needs (see Decide). The refusal's Message is
// English; its Text is for the receipt, in the submitter's language.
func CheckSubmitter(e *lessee.Enterprise, orgnr string, now time.Time) *lessee.Error {
	if e != nil && e.AcceptedAny(now) {
		return nil
	}
	return message.Refuse(lessee.CodeTermsNotAccepted, 0, message.SubmitterNoTerms, orgnr)
}
