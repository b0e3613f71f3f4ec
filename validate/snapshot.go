package validate

import (
	"strconv"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// DecideSnapshot judges the rows of a snapshot (see ParseSnapshotRow) in
// order, like Decide: one Outcome per row, with the row's Index, Line and
// Echo, later rows seeing in st what earlier ones did, and the registry
// writes of the applied ones. It uses Decide's rules: the same authority,
// vehicle and lessee-state checks, and the same add and remove.
//
// Each row's operation is derived from P, the lessee period in force on
// the processing date T (begun by T and open on T), and the row's lessee:
//
//   - keep: the row's lessee is P's, or the row has none and there is no
//     P; unchanged (start_date is not compared);
//   - remove: the row has no lessee and there is a P; P ends on T;
//   - add: the row has a lessee and there is no P; opened at start_date;
//   - replace: the row's lessee is not P's; P ends at start_date and the
//     row's lessee is opened at start_date, as one applied outcome with
//     Operation replace, Before P as it was and After the new period. If
//     the new period cannot be opened, nothing changes.
//
// A snapshot states the lessee on T and, for add and replace, from
// start_date on; it never shortens or removes a period that begins after T
// (a future lease on file). keep and remove look only at P, so a row
// without lessee leaves a future period alone, and the period add or
// replace opens, which has no end date, is a LESSEE_CONFLICT when it would
// overlap a future period, as for any add (see overlapping): a snapshot
// cannot make two lessees share a day, and replacing the future lessee
// takes a change file (or the snapshot again once that period is in force).
//
// The effective date, on which authority and ownership are judged, is T
// for keep and remove and start_date for add and replace (T when the row
// lacks the start_date it needs, which it is then rejected for).
//
// The first failed check names the code, in this order:
//
//  1. the row's own fields (its Problem);
//  2. the submitter's authority for the fleet owner on T, as for Decide;
//  3. the vehicle: VEHICLE_NOT_FOUND, REG_VIN_MISMATCH, NOT_OWNER on T;
//  4. DUPLICATE_VEHICLE: an earlier row of the file, in this chunk or an
//     earlier one (st.Named), named the vehicle. Every first naming of a
//     vehicle that passed 2 and 3 is added to st.Named and to
//     Decision.Named, whatever the row's outcome;
//  5. for add and replace, authority and ownership again on start_date;
//  6. the lessee state: MISSING_FIELD when add or replace lacks
//     start_date, END_BEFORE_START, and add's LESSEE_CONFLICT.
//
// Authority and ownership come first, on a date that does not depend on
// the row: the derived operation, its effective date and whether two
// identifiers name one vehicle would otherwise tell a submitter about a
// fleet it may not act for (who leases a vehicle, through which date a
// delegation message names). The operation is shown (in the outcome's
// Echo.Operation, for the receipt's operation column) only once the row
// has passed 2 and 3; rows rejected before keep an empty Echo.Operation.
// For the same reason the missing start_date, although a field, is
// reported in step 6.
//
// The caller may add rows of its own, such as the removal of a vehicle
// the snapshot left out (no lessee, Line 0): they follow the same rules.
func DecideSnapshot(cfg Config, job Job, st *lessee.State, rows []lessee.Row) lessee.Decision {
	if st == nil {
		st = lessee.NewState()
	}
	if st.Named == nil {
		st.Named = map[string]bool{}
	}
	var named []string
	d := decideRows(job, st, rows, func(r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet) {
		if vin := decideSnapshotRow(job, st, r, o, w); vin != "" {
			named = append(named, vin)
		}
	}, func(r lessee.Row) {
		if vin := nameRejected(job, st, r); vin != "" {
			named = append(named, vin)
		}
	})
	d.Named = named
	return d
}

// nameRejected marks the vehicle a row rejected on its own fields names,
// when the row would have passed authority and ownership on the
// processing date and the vehicle is not named yet, and returns its VIN:
// a later row naming the vehicle again is then a duplicate, as the file
// names it twice. It reveals nothing: the row is rejected either way.
func nameRejected(job Job, st *lessee.State, r lessee.Row) string {
	f := r.Change.OnBehalfOf
	if f == "" {
		f = job.Submitter
	}
	v, rej := findVehicle(st, r.Change)
	if rej != nil || v == nil || st.Named[v.VIN] ||
		authority(job, st, f, job.ProcessingDate) != nil || owns(v, f, job.ProcessingDate) != nil {
		return ""
	}
	st.Named[v.VIN] = true
	return v.VIN
}

// decideSnapshotRow decides one snapshot row without a Problem and returns
// the VIN of the vehicle it named for the first time, if any.
func decideSnapshotRow(job Job, st *lessee.State, r lessee.Row, o *lessee.Outcome, w *lessee.WriteSet) (named string) {
	ch := r.Change
	f := ch.OnBehalfOf
	if f == "" {
		f = job.Submitter
	}
	t := job.ProcessingDate

	v, lookup := findVehicle(st, ch)
	rej := authority(job, st, f, t)
	if rej == nil {
		rej = lookup
	}
	if rej == nil {
		rej = owns(v, f, t)
	}
	if rej == nil && st.Named[v.VIN] {
		field := lessee.ColVIN
		if ch.VIN == "" {
			field = lessee.ColRegistrationNumber
		}
		rej = rejectField(lessee.CodeDuplicateVehicle, field, message.DuplicateVehicle)
	} else if rej == nil {
		st.Named[v.VIN] = true
		named = v.VIN
	}
	if rej == nil {
		op, in := derive(v, ch.LesseeID, t)
		if (op == lessee.OpAdd || op == lessee.OpReplace) && !ch.StartDate.IsZero() && ch.StartDate != t {
			// Acting on another day: the authority and the ownership must
			// hold on it too.
			rej = authority(job, st, f, ch.StartDate)
			if rej == nil {
				rej = owns(v, f, ch.StartDate)
			}
		}
		if rej == nil {
			o.Echo.Operation = string(op)
			rej = applySnapshot(job, v, r, f, op, in, o, w)
		}
	}
	if rej != nil {
		fail(job, o, rej)
	}
	return named
}

// derive returns the operation a snapshot row with lessee lesseeID makes
// of vehicle v, judged on t, and the index of the period in force on t
// (-1 when none).
func derive(v *lessee.Vehicle, lesseeID string, t lessee.Date) (lessee.Operation, int) {
	i := inForce(v, t)
	switch {
	case lesseeID == "" && i < 0:
		return lessee.OpKeep, -1
	case lesseeID == "":
		return lessee.OpRemove, i
	case i < 0:
		return lessee.OpAdd, -1
	case v.Periods[i].LesseeID == lesseeID:
		return lessee.OpKeep, i
	}
	return lessee.OpReplace, i
}

// applySnapshot makes the derived operation op of row r on v, whose period
// in force on the processing date is v.Periods[in] (in < 0: none).
func applySnapshot(job Job, v *lessee.Vehicle, r lessee.Row, f string, op lessee.Operation, in int, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	ch, t := r.Change, job.ProcessingDate
	if (op == lessee.OpAdd || op == lessee.OpReplace) && ch.StartDate.IsZero() {
		return rejectField(lessee.CodeMissingField, lessee.ColStartDate, message.SnapshotStartEmpty, t)
	}
	open := lessee.Change{Operation: lessee.OpAdd, LesseeID: ch.LesseeID, LesseeName: ch.LesseeName, StartDate: ch.StartDate}
	switch op {
	case lessee.OpKeep:
		o.Status = lessee.StatusUnchanged
		if in < 0 {
			say(job, o, message.KeepNoLessee, t)
		} else {
			say(job, o, message.KeepLessee, v.Periods[in].Start)
		}
		return nil
	case lessee.OpRemove:
		if !v.Periods[in].Start.Before(t) {
			return rejectField(lessee.CodeEndBeforeStart, lessee.ColLesseeID, message.SnapshotRemoveSameDay, t)
		}
		return remove(job, v, withChange(r, lessee.Change{Operation: lessee.OpRemove, EndDate: t}), f, o, w)
	case lessee.OpAdd:
		if rej := endedConflict(v, ch.LesseeID, ch.StartDate, t); rej != nil {
			return rej
		}
		return add(job, v, withChange(r, open), f, o, w, true)
	case lessee.OpReplace:
		return replace(job, v, withChange(r, open), f, in, o, w)
	}
	return rejectField(lessee.CodeInvalidOperation, lessee.ColOperation, message.SnapshotOperation, strconv.Quote(string(op)))
}

// withChange returns r with its Change replaced by ch.
func withChange(r lessee.Row, ch lessee.Change) lessee.Row {
	r.Change = ch
	return r
}

// endedConflict rejects an add at start when the row's lessee has a period
// from start on file that has already ended by the processing date t. add
// would take it for the row's own period and call the row unchanged,
// though the lessee the snapshot names is no longer the vehicle's.
func endedConflict(v *lessee.Vehicle, lesseeID string, start, t lessee.Date) *reject {
	i := sameStart(v, lesseeID, start, "")
	if i < 0 || v.Periods[i].OpenOn(t) {
		return nil
	}
	return rejectField(lessee.CodeLesseeConflict, lessee.ColStartDate, message.SnapshotEndedConflict,
		start, v.Periods[i].End, v.Periods[i].End)
}

// replace ends v.Periods[in] at the start of r's change and opens r's
// lessee there, as one outcome; r's Change is the add of the new period.
// When the add is rejected, the period is restored and nothing is noted.
func replace(job Job, v *lessee.Vehicle, r lessee.Row, f string, in int, o *lessee.Outcome, w *lessee.WriteSet) *reject {
	s := r.Change.StartDate
	before := v.Periods[in]
	if !before.Start.Before(s) {
		return rejectField(lessee.CodeEndBeforeStart, lessee.ColStartDate, message.ReplaceEndBeforeStart, s, before.Start)
	}
	// A period that already ends by s is left as it is: ending it at s
	// would lengthen it.
	closes := before.End.IsZero() || s.Before(before.End)
	if closes {
		v.Periods[in].End = s
	}
	var added lessee.Outcome
	var scratch lessee.WriteSet // add's notes; kept only if the whole replace applies
	rej := add(job, v, r, f, &added, &scratch, true)
	if rej == nil && added.Status == lessee.StatusUnchanged && closes {
		// The new period is on file already while the old one still runs
		// past its start: the registry holds overlapping periods.
		rej = rejectField(lessee.CodeLesseeConflict, lessee.ColStartDate, message.ReplaceOverlap, s)
	}
	if rej != nil {
		v.Periods[in] = before
		return rej
	}
	if added.Status == lessee.StatusUnchanged {
		o.Status, o.Message = added.Status, added.Message
		return nil
	}
	if closes {
		w.Note(v.VIN, before.ID, false, r.Line)
	}
	w.Note(v.VIN, added.After.ID, true, r.Line)
	applied(job, r, v, f, lessee.OpReplace, &before, *added.After, o)
	say(job, o, message.Replaced, s)
	return nil
}
