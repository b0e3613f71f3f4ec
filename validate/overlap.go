package validate

import (
	"slices"
	"strings"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// A lessee period covers the days from its Start up to, not including, its
// End (a zero End: every day from Start on), so that a vehicle has at most
// one lessee on any day and a period ending on a day and the next starting
// that day share none. The functions here are the one home of that rule:
// every path that records a period (a change file's add, its dry run, a
// snapshot's add and replace, the single-change API, which all go through
// add) asks overlapping before it does.

// overlapping returns the earliest-starting period of periods that shares a
// day with the days from start up to, not including, end (zero: open-ended),
// and whether there is one. The earliest is reported because it is the one
// the new period meets first, so its dates are the ones to correct against.
func overlapping(periods []lessee.Period, start, end lessee.Date) (lessee.Period, bool) {
	all := overlappingAll(periods, start, end)
	if len(all) == 0 {
		return lessee.Period{}, false
	}
	return all[0], true
}

// overlappingAll returns every period of periods that shares a day with the
// days from start up to, not including, end, earliest start first. A
// conflict's advice depends on all of them: ending the one in force is no
// fix when the row also runs into a later one.
func overlappingAll(periods []lessee.Period, start, end lessee.Date) []lessee.Period {
	var all []lessee.Period
	for _, p := range periods {
		if overlaps(p.Start, p.End, start, end) {
			all = append(all, p)
		}
	}
	slices.SortStableFunc(all, func(a, b lessee.Period) int { return strings.Compare(string(a.Start), string(b.Start)) })
	return all
}

// overlaps reports whether [s1, e1) and [s2, e2) share a day; a zero end is
// open-ended. Half-open, so that one period may begin the day another ends;
// and a period that ends on its start (an add may give end_date equal to
// start_date) covers no day, as an empty PostgreSQL daterange overlaps
// nothing, so the database's constraint and this rule agree.
func overlaps(s1, e1, s2, e2 lessee.Date) bool {
	if s1 == e1 || s2 == e2 {
		return false
	}
	return (e2.IsZero() || s1.Before(e2)) && (e1.IsZero() || s2.Before(e1))
}

// inForce returns the index of the period in force on d: begun by d and not
// yet ended on it, the one whose days include d; -1 when none is. Should
// the registry hold overlapping periods (written before the rule held),
// the latest-starting wins, as it is the one a lessee change last made.
func inForce(v *lessee.Vehicle, d lessee.Date) int {
	found := -1
	for i, p := range v.Periods {
		if d.Before(p.Start) || !p.OpenOn(d) {
			continue
		}
		if found < 0 || !p.Start.Before(v.Periods[found].Start) {
			found = i
		}
	}
	return found
}

// sameStart returns the index of a period of lesseeID that starts on start,
// preferring one that ends on end when end is given, or -1. Such a period
// is what makes an add unchanged, so it is looked for before overlap, which
// the period itself would otherwise be. A period that ends on its start
// (on file from before such adds were refused) holds no day, so it never
// makes an add unchanged: the lessee would be told it has a lease it lacks.
func sameStart(v *lessee.Vehicle, lesseeID string, start, end lessee.Date) int {
	found := -1
	for i, p := range v.Periods {
		if p.LesseeID != lesseeID || p.Start != start || p.Start == p.End {
			continue
		}
		if end.IsZero() || p.End == end {
			return i
		}
		if found < 0 {
			found = i
		}
	}
	return found
}

// overlapConflict is the LESSEE_CONFLICT of a period from start that
// would overlap the periods ps (overlappingAll's, at least one). It names
// their dates, never their lessees, and says what would fix the row: for a
// change file, an end before a period that begins later, or a remove of
// the one in force first; for a snapshot, whose rows have no end date, a
// start after the period ends. Advice is given only where it is enough:
// a row that begins inside one period and runs into another would still
// overlap the later one after a remove (or a later start), so such a row
// is told the dates of every period it overlaps instead.
func overlapConflict(ps []lessee.Period, start lessee.Date, snapshot bool) *reject {
	p := ps[0]
	if len(ps) > 1 && !start.Before(p.Start) {
		return overlapMany(ps)
	}
	col, hint := lessee.ColStartDate, message.New(message.OverlapOneLessee)
	switch {
	case start.Before(p.Start) && snapshot:
		hint = message.New(message.OverlapSnapshotNoEnd)
	case start.Before(p.Start):
		col, hint = lessee.ColEndDate, message.New(message.OverlapEndBy, p.Start)
	case p.Start.Before(start) && !snapshot:
		hint = message.New(message.OverlapRemoveFirst, start)
	case !p.End.IsZero():
		hint = message.New(message.OverlapStartFrom, p.End)
	}
	if p.End.IsZero() {
		return rejectField(lessee.CodeLesseeConflict, col, message.ConflictOverlapOpen, p.Start, hint)
	}
	return rejectField(lessee.CodeLesseeConflict, col, message.ConflictOverlapTo, p.Start, p.End, hint)
}

// maxOverlapsNamed bounds the periods a conflict names, so that a row over
// a long history still gets a message that fits a receipt cell.
const maxOverlapsNamed = 4

// overlapMany is the LESSEE_CONFLICT of a row overlapping every period of
// ps (two or more): it names each one's dates and no lessee.
func overlapMany(ps []lessee.Period) *reject {
	var dates message.List
	for i, p := range ps {
		if i == maxOverlapsNamed {
			dates = append(dates, message.New(message.OverlapMore, len(ps)-i))
			break
		}
		if p.End.IsZero() {
			dates = append(dates, message.New(message.PeriodFromOpen, p.Start))
		} else {
			dates = append(dates, message.New(message.PeriodFromTo, p.Start, p.End))
		}
	}
	return rejectField(lessee.CodeLesseeConflict, lessee.ColStartDate, message.ConflictOverlapMany, len(ps), dates)
}
