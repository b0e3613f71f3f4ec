package validate

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
)

// shareADay reports whether p and q have a day in common: the later start
// is before the earlier end. It is written apart from overlapping, so that
// a mistake there cannot hide from the tests that use it.
func shareADay(p, q lessee.Period) bool {
	end := func(e lessee.Date) lessee.Date {
		if e.IsZero() {
			return "9999-12-31"
		}
		return e
	}
	return max(p.Start, q.Start) < min(end(p.End), end(q.End))
}

// checkNoOverlap fails when two periods of a vehicle of st share a day.
func checkNoOverlap(tb testing.TB, st *lessee.State) {
	tb.Helper()
	for vin, v := range st.Vehicles {
		for i, p := range v.Periods {
			for _, q := range v.Periods[i+1:] {
				if shareADay(p, q) {
					tb.Errorf("%s: periods %+v and %+v overlap", vin, p, q)
				}
			}
		}
	}
}

func TestOverlapping(t *testing.T) {
	t.Parallel()
	periods := []lessee.Period{
		{ID: "a", Start: "2026-01-01", End: "2026-06-01"},
		{ID: "b", Start: "2027-01-01"},
	}
	for _, tc := range []struct {
		start, end lessee.Date
		want       string // id of the period reported, "" for none
	}{
		{"2025-01-01", "2026-01-01", ""}, // ends the day a begins
		{"2025-01-01", "2026-01-02", "a"},
		{"2026-06-01", "2027-01-01", ""}, // between a and b, both ends touching
		{"2026-06-01", "", "b"},
		{"2026-05-31", "2026-06-01", "a"}, // a's last day
		{"2026-02-01", "2026-03-01", "a"}, // inside
		{"2025-01-01", "", "a"},           // over both: the earliest
		{"2030-01-01", "2030-01-02", "b"}, // inside the open-ended one
		{"2026-03-01", "2026-03-01", ""},  // empty: covers no day
	} {
		p, ok := overlapping(periods, tc.start, tc.end)
		if ok != (tc.want != "") || p.ID != tc.want {
			t.Errorf("overlapping(%s, %s) = %q, %v; want %q", tc.start, tc.end, p.ID, ok, tc.want)
		}
	}
}

// TestDecideOverlap holds add and remove to the invariant of the product
// contract (docs/spec.md, "The rules it applies"): at most one lessee on
// any day, a period running up
// to, not including, its end. Each case is then uploaded again on the
// state it left: a row applied the first time is unchanged, a rejected one
// rejected with the same code, and nothing changes.
func TestDecideOverlap(t *testing.T) {
	t.Parallel()
	periods := func(vin string, ps ...lessee.Period) func(st *lessee.State) {
		// A copy each: the cases run in parallel and Decide changes periods in place.
		return func(st *lessee.State) { st.Vehicles[vin].Periods = append([]lessee.Period(nil), ps...) }
	}
	addTo := func(vin, id, start, end string) cells {
		return with(addRow(vin, id, start), lessee.ColEndDate, end)
	}
	// vin1 has person2 on file from 2027-01-01, open-ended: a later lease.
	later := periods(vin1, lessee.Period{ID: "later", LesseeID: person2, Start: "2027-01-01"})
	// vin1 has person2 on file for the first half of 2026.
	bounded := periods(vin1, lessee.Period{ID: "mid", LesseeID: person2, Start: "2026-01-01", End: "2026-06-01"})
	// vin4 has person1 until 2026-06-01 and person2 from then.
	handover := periods(vin4, lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01", End: "2026-06-01"},
		lessee.Period{ID: "next", LesseeID: person2, Start: "2026-06-01"})

	// vin1 has person2 until 2027-01-01 and orgC from then: a period in
	// force and a later one.
	inForceAndLater := periods(vin1, lessee.Period{ID: "now", LesseeID: person2, Start: "2026-01-01", End: "2027-01-01"},
		lessee.Period{ID: "next", LesseeID: orgC, Start: "2027-01-01"})

	tests := []struct {
		name     string
		snapshot bool
		row      cells
		setup    func(st *lessee.State)
		status   lessee.Status // default rejected
		code     lessee.Code
		msg      string // substring of the message
	}{
		// A short lease before a later one on file.
		{name: "OKShortLeaseBeforeLater", row: addTo(vin1, person1, "2026-01-01", "2026-06-01"), setup: later,
			status: lessee.StatusApplied, msg: "lessee added from 2026-01-01 to 2026-06-01"},
		{name: "OKEndsTheDayTheNextBegins", row: addTo(vin1, person1, "2026-07-01", "2027-01-01"), setup: later,
			status: lessee.StatusApplied},
		{name: "ErrRunsIntoLater", row: addTo(vin1, person1, "2026-07-01", "2027-01-02"), setup: later,
			code: lessee.CodeLesseeConflict,
			msg:  "end_date: overlaps the lessee registered from 2027-01-01 with no end date; give an end_date no later than 2027-01-01"},
		{name: "ErrOpenEndedBeforeLater", row: addRow(vin1, person1, "2026-07-01"), setup: later,
			code: lessee.CodeLesseeConflict, msg: "end_date: overlaps the lessee registered from 2027-01-01"},
		{name: "ErrSameLesseeOpenEndedBeforeLater", row: addRow(vin1, person2, "2026-07-01"), setup: later,
			code: lessee.CodeLesseeConflict, msg: "registered from 2027-01-01"},

		// History before the lease in force (vin4: person1 from 2025-06-01).
		{name: "OKHistoryBeforeLease", row: addTo(vin4, person2, "2024-03-01", "2025-01-01"),
			status: lessee.StatusApplied},
		{name: "OKHistoryEndsOnLeaseStart", row: addTo(vin4, person2, "2024-03-01", "2025-06-01"),
			status: lessee.StatusApplied},
		{name: "OKHistorySameLessee", row: addTo(vin4, person1, "2024-03-01", "2025-06-01"),
			status: lessee.StatusApplied},
		{name: "ErrHistoryRunsIntoLease", row: addTo(vin4, person2, "2024-03-01", "2025-06-02"),
			code: lessee.CodeLesseeConflict, msg: "overlaps the lessee registered from 2025-06-01 with no end date"},
		{name: "ErrHistoryOpenEnded", row: addRow(vin4, person2, "2024-03-01"),
			code: lessee.CodeLesseeConflict, msg: "give an end_date no later than 2025-06-01"},

		// Overlaps at either end and inside (vin1: person2 2026-01-01 to 2026-06-01).
		{name: "ErrOverlapAtStart", row: addTo(vin1, person1, "2025-10-01", "2026-02-01"), setup: bounded,
			code: lessee.CodeLesseeConflict,
			msg:  "end_date: overlaps the lessee registered from 2026-01-01 to 2026-06-01; give an end_date no later than 2026-01-01"},
		{name: "ErrOverlapAtEnd", row: addTo(vin1, person1, "2026-05-31", "2026-09-01"), setup: bounded,
			code: lessee.CodeLesseeConflict,
			msg:  "start_date: overlaps the lessee registered from 2026-01-01 to 2026-06-01; end that period first with a remove on 2026-05-31"},
		{name: "ErrOverlapAtEndOpenEnded", row: addRow(vin1, person1, "2026-03-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "from 2026-01-01 to 2026-06-01"},
		{name: "ErrOverlapInside", row: addTo(vin1, person1, "2026-02-01", "2026-03-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "from 2026-01-01 to 2026-06-01"},
		{name: "ErrOverlapAround", row: addTo(vin1, person1, "2025-10-01", "2026-09-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "from 2026-01-01 to 2026-06-01"},
		{name: "ErrOverlapSameDays", row: addTo(vin1, person1, "2026-01-01", "2026-06-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "give a start_date no earlier than 2026-06-01"},
		{name: "ErrOverlapSameLesseeOtherEnd", row: addTo(vin1, person2, "2026-01-01", "2026-07-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "registered from 2026-01-01 to 2026-06-01"},
		{name: "ErrOverlapSameLesseeInside", row: addTo(vin1, person2, "2026-02-01", "2026-03-01"), setup: bounded,
			code: lessee.CodeLesseeConflict, msg: "from 2026-01-01 to 2026-06-01"},
		{name: "OKStartsTheDayItEnds", row: addRow(vin1, person1, "2026-06-01"), setup: bounded,
			status: lessee.StatusApplied},
		{name: "OKEndsTheDayItStarts", row: addTo(vin1, person1, "2025-10-01", "2026-01-01"), setup: bounded,
			status: lessee.StatusApplied},
		{name: "OKUnchangedBounded", row: addTo(vin1, person2, "2026-01-01", "2026-06-01"), setup: bounded,
			status: lessee.StatusUnchanged, msg: "already has this lessee from 2026-01-01"},
		{name: "OKUnchangedEndNotGiven", row: addRow(vin1, person2, "2026-01-01"), setup: bounded,
			status: lessee.StatusUnchanged},
		{name: "OKUnchangedFuture", row: addRow(vin1, person2, "2027-01-01"), setup: later,
			status: lessee.StatusUnchanged},

		// A row over the period in force and a later one: a remove on its
		// start would not be enough, so none is suggested; both periods'
		// dates are named. Over the one in force only, the remove is.
		{name: "ErrOverInForceAndLater", row: addTo(vin1, person1, "2026-12-15", "2027-03-01"), setup: inForceAndLater,
			code: lessee.CodeLesseeConflict,
			msg: "start_date: overlaps 2 lessee periods registered from 2026-01-01 to 2027-01-01 and from 2027-01-01 with no end date; " +
				"a vehicle has one lessee on any day, so give dates that overlap none of them"},
		{name: "ErrOverInForceAndLaterOpenEnded", row: addRow(vin1, person1, "2026-12-15"), setup: inForceAndLater,
			code: lessee.CodeLesseeConflict, msg: "overlaps 2 lessee periods registered from 2026-01-01 to 2027-01-01 and from 2027-01-01"},
		{name: "ErrOverInForceOnly", row: addTo(vin1, person1, "2026-12-15", "2027-01-01"), setup: inForceAndLater,
			code: lessee.CodeLesseeConflict, msg: "end that period first with a remove on 2026-12-15"},
		{name: "ErrBeforeBothEndBy", row: addTo(vin1, person1, "2025-12-01", "2027-03-01"), setup: inForceAndLater,
			code: lessee.CodeLesseeConflict, msg: "end_date: overlaps the lessee registered from 2026-01-01 to 2027-01-01; give an end_date no later than 2026-01-01"},

		// A zero-day period (end on its start) covers no day: refused, and a
		// later add of that lessee from that day is not unchanged.
		{name: "ErrEndOnStart", row: addTo(vin1, person1, "2026-03-01", "2026-03-01"),
			code: lessee.CodeEndBeforeStart, msg: "end_date: 2026-03-01 is the same day as start_date; " +
				"a lease runs up to, not including, its end date, so the end date must be after the start date"},
		{name: "ErrEndOnStartBeforeLater", row: addTo(vin1, person1, "2026-03-01", "2026-03-01"), setup: later,
			code: lessee.CodeEndBeforeStart},
		{name: "OKAddOverZeroDayOnFile", row: addRow(vin1, person1, "2026-03-01"),
			setup:  periods(vin1, lessee.Period{ID: "zero", LesseeID: person1, Start: "2026-03-01", End: "2026-03-01"}),
			status: lessee.StatusApplied, msg: "lessee added from 2026-03-01 with no end date"},

		// remove ends only the period in force on its date.
		{name: "ErrRemoveBeforeFutureStart", row: removeRow(vin1, "", "2026-06-01"), setup: later,
			code: lessee.CodeNoActiveLessee, msg: "no active lessee on 2026-06-01"},
		{name: "ErrRemoveBeforeFutureStartNamed", row: removeRow(vin1, person2, "2026-06-01"), setup: later,
			code: lessee.CodeNoActiveLessee},
		{name: "ErrRemoveBeforeStartOtherInForce", row: removeRow(vin4, person2, "2026-03-01"), setup: handover,
			code: lessee.CodeLesseeMismatch},
		{name: "OKRemoveInForceNotNext", row: removeRow(vin4, "", "2026-03-01"), setup: handover,
			status: lessee.StatusApplied, msg: "end date 2026-03-01"},
		{name: "OKRemoveShortensBounded", row: removeRow(vin1, person2, "2026-03-01"), setup: bounded,
			status: lessee.StatusApplied},
		{name: "OKRemoveOnEndDay", row: removeRow(vin1, person2, "2026-06-01"), setup: bounded,
			status: lessee.StatusUnchanged, msg: "already ends on 2026-06-01"},
		{name: "OKRemoveOnHandoverDay", row: removeRow(vin4, "", "2026-06-01"), setup: handover,
			status: lessee.StatusUnchanged},
		{name: "ErrRemoveAfterEnd", row: removeRow(vin1, "", "2026-07-01"), setup: bounded,
			code: lessee.CodeNoActiveLessee},

		// Snapshots: the row's period has no end date.
		{name: "ErrSnapshotAddBeforeLater", snapshot: true, row: snapRow(vin1, person1, "2026-01-01"), setup: later,
			code: lessee.CodeLesseeConflict, msg: "start_date: overlaps the lessee registered from 2027-01-01 with no end date; a snapshot row's lease has no end date"},
		{name: "ErrSnapshotAddOverEndedOther", snapshot: true, row: snapRow(vin1, person1, "2026-01-01"),
			setup: periods(vin1, lessee.Period{ID: "e", LesseeID: person2, Start: "2025-10-01", End: "2026-02-01"}),
			code:  lessee.CodeLesseeConflict, msg: "start_date: overlaps the lessee registered from 2025-10-01 to 2026-02-01; give a start_date no earlier than 2026-02-01"},
		{name: "OKSnapshotReplaceBounded", snapshot: true, row: snapRow(vin1, person1, "2026-02-01"), setup: bounded,
			status: lessee.StatusApplied, msg: "lessee replaced from 2026-02-01"},
		{name: "OKSnapshotAddAfterBounded", snapshot: true, row: snapRow(vin1, person1, "2026-06-01"), setup: bounded,
			status: lessee.StatusApplied},
		{name: "ErrSnapshotReplaceIntoNext", snapshot: true, row: snapRow(vin4, orgC, "2026-04-01"), setup: handover,
			code: lessee.CodeLesseeConflict, msg: "overlaps the lessee registered from 2026-06-01 with no end date"},
		{name: "ErrSnapshotReplaceAfterNextStarts", snapshot: true, row: snapRow(vin4, orgC, "2026-07-01"), setup: handover,
			code: lessee.CodeLesseeConflict, msg: "overlaps the lessee registered from 2026-06-01"},
		{name: "OKSnapshotKeepLeavesNextAlone", snapshot: true, row: snapRow(vin4, person1, ""), setup: handover,
			status: lessee.StatusUnchanged},
		{name: "OKSnapshotRemoveLeavesNextAlone", snapshot: true, row: snapRow(vin4, "", ""), setup: handover,
			status: lessee.StatusApplied, msg: "end date 2026-03-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.status == "" {
				tt.status = lessee.StatusRejected
			}
			fx := newFixture()
			if tt.setup != nil {
				tt.setup(fx.state)
			}
			job := testJob()
			decide, parse := Decide, rows
			if tt.snapshot {
				decide, parse = DecideSnapshot, snapRows
			}
			rs := parse(t, job, tt.row)
			d := decide(Config{}, job, fx.state, rs)
			checkWrites(t, d, fx.state)
			checkNoOverlap(t, fx.state)
			o := d.Outcomes[0]
			if o.Status != tt.status || o.Code != tt.code || !strings.Contains(o.Message, tt.msg) {
				t.Fatalf("outcome %s %s %q; want %s %s with %q", o.Status, o.Code, o.Message, tt.status, tt.code, tt.msg)
			}
			if strings.Contains(o.Message, "remove") && strings.Contains(tt.name, "AndLater") {
				t.Errorf("message %q suggests a remove that would not be enough", o.Message)
			}
			for _, leak := range []string{person1, person2, orgC} {
				if strings.Contains(o.Message, leak) {
					t.Errorf("message %q reveals %s", o.Message, leak)
				}
			}

			// Uploaded again: never applied twice.
			before := clonePeriods(fx.state)
			fx.state.Named = map[string]bool{}
			job.ID = "job2"
			again := decide(Config{}, job, fx.state, rs)
			a := again.Outcomes[0]
			switch {
			case o.Status == lessee.StatusRejected && (a.Status != lessee.StatusRejected || a.Code != o.Code):
				t.Errorf("uploaded again: %s %s %q; first %s", a.Status, a.Code, a.Message, o.Code)
			case o.Status != lessee.StatusRejected && a.Status != lessee.StatusUnchanged:
				t.Errorf("uploaded again: %s %s %q; want unchanged", a.Status, a.Code, a.Message)
			}
			if len(again.Writes.Opened)+len(again.Writes.Closed) != 0 || !reflect.DeepEqual(before, clonePeriods(fx.state)) {
				t.Errorf("uploaded again, the state changed: %+v", again.Writes)
			}
		})
	}
}

// TestOverlapMessageNorwegian: the conflict and its advice are written
// together in the job's language.
func TestOverlapMessageNorwegian(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	fx.state.Vehicles[vin1].Periods = []lessee.Period{{ID: "later", LesseeID: person2, Start: "2027-01-01"}}
	job := testJob()
	job.Language = lessee.Norwegian
	o := Decide(Config{}, job, fx.state, rows(t, job, addRow(vin1, person1, "2026-07-01"))).Outcomes[0]
	const want = "end_date: overlapper med leasingtakeren som er registrert fra 2027-01-01 uten sluttdato; " +
		"oppgi en end_date som ikke er senere enn 2027-01-01, dagen den perioden begynner"
	if o.Code != lessee.CodeLesseeConflict || o.Message != want {
		t.Errorf("%s %q, want %q", o.Code, o.Message, want)
	}
}

// TestOverlapManyMessages: a row over several periods names their dates
// in the job's language, at most four and how many more.
func TestOverlapManyMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lang    lessee.Language
		periods []lessee.Period
		want    string
	}{
		{lessee.Norwegian, []lessee.Period{
			{ID: "a", LesseeID: person2, Start: "2026-01-01", End: "2027-01-01"},
			{ID: "b", LesseeID: orgC, Start: "2027-01-01"},
		}, "start_date: overlapper med 2 leasingperioder som er registrert fra 2026-01-01 til 2027-01-01 og fra 2027-01-01 uten sluttdato; " +
			"et kjøretøy har bare én leasingtaker på en gitt dag, så oppgi datoer som ikke overlapper noen av dem"},
		{lessee.English, []lessee.Period{
			{ID: "a", LesseeID: person2, Start: "2026-01-01", End: "2026-12-16"},
			{ID: "b", LesseeID: orgC, Start: "2026-12-16", End: "2026-12-17"},
			{ID: "c", LesseeID: person2, Start: "2026-12-17", End: "2026-12-18"},
			{ID: "d", LesseeID: orgC, Start: "2026-12-18", End: "2026-12-19"},
			{ID: "e", LesseeID: person2, Start: "2026-12-19", End: "2026-12-20"},
			{ID: "f", LesseeID: orgC, Start: "2026-12-20"},
		}, "start_date: overlaps 6 lessee periods registered from 2026-01-01 to 2026-12-16 and from 2026-12-16 to 2026-12-17 and " +
			"from 2026-12-17 to 2026-12-18 and from 2026-12-18 to 2026-12-19 and 2 more; a vehicle has one lessee on any day, so give dates that overlap none of them"},
	} {
		fx := newFixture()
		fx.state.Vehicles[vin1].Periods = tc.periods
		job := testJob()
		job.Language = tc.lang
		o := Decide(Config{}, job, fx.state, rows(t, job, addRow(vin1, person1, "2026-12-15"))).Outcomes[0]
		if o.Code != lessee.CodeLesseeConflict || o.Message != tc.want {
			t.Errorf("%s: %s %q, want %q", tc.lang, o.Code, o.Message, tc.want)
		}
	}
}

// TestEndOnStartNorwegian: a zero-day add is refused in the job's language
// too, saying the end date must come after the start date.
func TestEndOnStartNorwegian(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	job := testJob()
	job.Language = lessee.Norwegian
	row := with(addRow(vin1, person1, "2026-03-01"), lessee.ColEndDate, "2026-03-01")
	o := Decide(Config{}, job, fx.state, rows(t, job, row)).Outcomes[0]
	const want = "end_date: 2026-03-01 er samme dag som start_date; et leieforhold varer fram til, men ikke med, " +
		"sluttdatoen, så sluttdatoen må være etter startdatoen: oppgi dagen etter leieforholdets siste dag"
	if o.Code != lessee.CodeEndBeforeStart || o.Message != want {
		t.Errorf("%s %q, want %q", o.Code, o.Message, want)
	}
}
