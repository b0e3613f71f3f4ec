package validate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// snapRows parses cells as snapshot rows with index i for the i-th cells.
func snapRows(tb testing.TB, job Job, in ...cells) []lessee.Row {
	tb.Helper()
	out := make([]lessee.Row, len(in))
	for i, c := range in {
		out[i] = ParseSnapshotRow(Config{}, job, raw(i, c))
	}
	return out
}

func snapRow(vin, id, start string) cells {
	c := cells{lessee.ColVIN: vin, lessee.ColLesseeID: id}
	if start != "" {
		c[lessee.ColStartDate] = start
	}
	return c
}

// absentRow is what the worker feeds for a vehicle a snapshot left out.
func absentRow(index int, vin string) lessee.Row {
	return lessee.Row{Index: index, Echo: lessee.Echo{VIN: vin}, Change: lessee.Change{VIN: vin, EndDate: testJob().ProcessingDate}}
}

// checkSnapshotShape asserts what every snapshot outcome must hold: the
// row's index, line and echo (but for the derived operation), a clean
// message, and a change only when applied, named as derived.
func checkSnapshotShape(tb testing.TB, rows []lessee.Row, out []lessee.Outcome) {
	tb.Helper()
	if len(out) != len(rows) {
		tb.Fatalf("%d outcomes for %d rows", len(out), len(rows))
	}
	for i, o := range out {
		r := rows[i]
		echo := o.Echo
		echo.Operation = r.Echo.Operation
		if o.Index != r.Index || o.Line != r.Line || echo != r.Echo {
			tb.Errorf("row %d: outcome does not carry the row's index, line and echo", i)
		}
		if o.Message == "" || elevenDigits(o.Message) {
			tb.Errorf("row %d: bad message %q", i, o.Message)
		}
		switch lessee.Operation(o.Echo.Operation) {
		case "", lessee.OpKeep, lessee.OpAdd, lessee.OpReplace, lessee.OpRemove:
		default:
			tb.Errorf("row %d: echoed operation %q", i, o.Echo.Operation)
		}
		switch o.Status {
		case lessee.StatusApplied:
			if o.Code != "" || o.ChangeID != lessee.ChangeID("job1", r.Index) || o.VIN == "" || o.OnBehalfOf == "" ||
				o.After == nil || string(o.Operation) != o.Echo.Operation || o.Operation == lessee.OpKeep {
				tb.Errorf("row %d: incomplete applied outcome %+v", i, o)
			}
			switch o.Operation {
			case lessee.OpRemove:
				if o.Before == nil || o.Before.ID != o.After.ID {
					tb.Errorf("row %d: close without the period before", i)
				}
			case lessee.OpReplace:
				if o.Before == nil || o.Before.ID == o.After.ID || o.After.ID != o.ChangeID {
					tb.Errorf("row %d: replace without the period before and the one opened: %+v", i, o)
				}
			}
		case lessee.StatusUnchanged:
			if o.Code != "" || o.ChangeID != "" || o.Operation != "" || o.After != nil || o.Echo.Operation == "" {
				tb.Errorf("row %d: unchanged outcome carries a change or no operation: %+v", i, o)
			}
		case lessee.StatusRejected:
			if o.Code == "" || o.ChangeID != "" || o.Operation != "" || o.After != nil {
				tb.Errorf("row %d: bad rejected outcome %+v", i, o)
			}
		default:
			tb.Errorf("row %d: status %q", i, o.Status)
		}
	}
}

func TestParseSnapshotRow(t *testing.T) {
	t.Parallel()
	full := func(mod func(c cells)) cells {
		c := cells{
			lessee.ColRegistrationNumber: "ab 12345",
			lessee.ColVIN:                vin1,
			lessee.ColLesseeID:           person1,
			lessee.ColLesseeName:         "Nordmann",
			lessee.ColStartDate:          "1.1.2026",
			lessee.ColOnBehalfOf:         "974 760 673",
			lessee.ColReference:          "ref-1",
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	const T = lessee.Date("2026-03-01")
	tests := []struct {
		name   string
		cells  cells
		kinds  map[lessee.Column]lessee.CellKind
		reader *lessee.Problem
		code   lessee.Code
		field  string
		msg    string        // substring of the message
		change lessee.Change // expected whether or not there is a Problem
	}{
		{name: "OK", cells: full(nil), change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
			LesseeName: "Nordmann", StartDate: "2026-01-01", EndDate: T, OnBehalfOf: orgF, Reference: "ref-1"}},
		{name: "OKNoLessee", cells: cells{lessee.ColVIN: strings.ToLower(vin1)}, change: lessee.Change{VIN: vin1, EndDate: T}},
		{name: "OKOnlyRegNumber", cells: cells{lessee.ColRegistrationNumber: "EL-12345", lessee.ColLesseeID: orgC},
			change: lessee.Change{RegistrationNumber: "EL12345", LesseeID: orgC, EndDate: T}},
		{name: "OKOperationAndEndDateIgnored", cells: full(func(c cells) {
			c[lessee.ColOperation] = "frobnicate"
			c[lessee.ColEndDate] = "not a date"
		}), change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1, LesseeID: person1,
			LesseeName: "Nordmann", StartDate: "2026-01-01", EndDate: T, OnBehalfOf: orgF, Reference: "ref-1"}},
		{name: "OKStartAfterProcessingDate", cells: snapRow(vin1, person1, "2026-06-01"),
			change: lessee.Change{VIN: vin1, LesseeID: person1, StartDate: "2026-06-01", EndDate: T}},

		{name: "ErrMissingVehicle", cells: full(func(c cells) { delete(c, lessee.ColVIN); delete(c, lessee.ColRegistrationNumber) }),
			code: lessee.CodeMissingField, field: "vin", msg: "give at least one"},
		{name: "ErrInvalidRegNumber", cells: full(func(c cells) { c[lessee.ColRegistrationNumber] = "AB!1" }),
			code: lessee.CodeInvalidRegNumber, field: "registration_number", change: lessee.Change{VIN: vin1}},
		{name: "ErrInvalidVINKeepsRegNumber", cells: full(func(c cells) { c[lessee.ColVIN] = "WVWZZZ1JZXWO00001" }),
			code: lessee.CodeInvalidVIN, field: "vin", change: lessee.Change{RegistrationNumber: "AB12345"}},
		{name: "ErrInvalidLesseeIDKeepsVehicle", cells: full(func(c cells) { c[lessee.ColLesseeID] = "01019012481" }),
			code: lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "check digits",
			change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1}},
		{name: "ErrInvalidLesseeIDNumberCell", cells: snapRow(vin1, "1019012480", "2026-01-01"),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColLesseeID: lessee.CellNumber},
			code:  lessee.CodeInvalidLesseeID, field: "lessee_id", msg: "format the column as text", change: lessee.Change{VIN: vin1}},
		{name: "ErrInvalidOnBehalfOf", cells: full(func(c cells) { c[lessee.ColOnBehalfOf] = person2 }),
			code: lessee.CodeInvalidOnBehalfOf, field: "on_behalf_of", change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1}},
		{name: "ErrInvalidStartDate", cells: snapRow(vin1, person1, "31.04.2026"),
			code: lessee.CodeInvalidDate, field: "start_date", msg: "day 31", change: lessee.Change{VIN: vin1}},
		{name: "ErrInvalidStartDateSerial", cells: snapRow(vin1, person1, "46023"),
			kinds: map[lessee.Column]lessee.CellKind{lessee.ColStartDate: lessee.CellNumber},
			code:  lessee.CodeInvalidDate, field: "start_date", msg: "plain number", change: lessee.Change{VIN: vin1}},
		{name: "ErrFieldTooLong", cells: full(func(c cells) { c[lessee.ColLesseeName] = strings.Repeat("x", 201) }),
			code: lessee.CodeFieldTooLong, field: "lessee_name", change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1}},
		{name: "ErrReaderProblemKeepsVehicle", cells: full(nil),
			reader: &lessee.Problem{Code: lessee.CodeRaggedRow, Message: "row has 12 fields, header has 9; " + person1},
			code:   lessee.CodeRaggedRow, msg: "row has 12 fields", change: lessee.Change{RegistrationNumber: "AB12345", VIN: vin1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := raw(4, tt.cells)
			for col, k := range tt.kinds {
				r.Cells[col].Kind = k
			}
			r.Problem = tt.reader
			row := ParseSnapshotRow(Config{}, testJob(), r)
			if row.Index != 4 || row.Line != 6 {
				t.Errorf("Index, Line = %d, %d; want 4, 6", row.Index, row.Line)
			}
			if row.Echo.Operation != "" {
				t.Errorf("echoed operation %q", row.Echo.Operation)
			}
			want := tt.change
			if tt.code != "" {
				// A rejected row keeps its valid on_behalf_of too.
				if obo := ident.NormaliseID(tt.cells[lessee.ColOnBehalfOf]); obo != "" && ident.OrgNr(obo) == nil {
					want.OnBehalfOf = obo
				}
			}
			if row.Change != want {
				t.Errorf("change = %+v\nwant     %+v", row.Change, want)
			}
			if tt.code == "" {
				if row.Problem != nil {
					t.Fatalf("unexpected problem %+v", *row.Problem)
				}
				return
			}
			p := row.Problem
			if p == nil {
				t.Fatalf("no problem, want %s", tt.code)
			}
			if p.Code != tt.code || !strings.Contains(p.Message, tt.msg) || !strings.HasPrefix(p.Message, tt.field) {
				t.Fatalf("problem = %+v; want code %s field %q message containing %q", *p, tt.code, tt.field, tt.msg)
			}
			if elevenDigits(p.Message) {
				t.Errorf("message %q carries an 11-digit number", p.Message)
			}
		})
	}
}

// TestParseSnapshotRowMatchesParseRow: a snapshot row's fields are checked
// with ParseRow's messages.
func TestParseSnapshotRowMatchesParseRow(t *testing.T) {
	t.Parallel()
	for _, c := range []cells{
		snapRow("WVWZZZ1JZXW00000", person1, "2026-01-01"),
		snapRow(vin1, "1.01901E+10", "2026-01-01"),
		snapRow(vin1, person1, "2026-02-30"),
		with(snapRow(vin1, person1, "2026-01-01"), lessee.ColOnBehalfOf, "123"),
		with(snapRow(vin1, person1, "2026-01-01"), lessee.ColReference, strings.Repeat("r", 201)),
		{lessee.ColRegistrationNumber: "A", lessee.ColLesseeID: person1, lessee.ColStartDate: "2026-01-01"},
	} {
		s := ParseSnapshotRow(Config{}, testJob(), raw(0, c))
		p := ParseRow(Config{}, testJob(), raw(0, with(c, lessee.ColOperation, "add")))
		if s.Problem == nil || p.Problem == nil || s.Problem.Code != p.Problem.Code || s.Problem.Message != p.Problem.Message {
			t.Errorf("cells %v: snapshot problem %+v, change-file problem %+v", c, s.Problem, p.Problem)
		}
	}
}

func TestDecideSnapshot(t *testing.T) {
	t.Parallel()
	periods := func(vin string, ps ...lessee.Period) func(st *lessee.State) {
		return func(st *lessee.State) { st.Vehicles[vin].Periods = ps }
	}
	delegationTo := func(validTo lessee.Date) func(st *lessee.State) {
		return func(st *lessee.State) { st.Delegations[[2]string{orgF, orgT}][0].ValidTo = validTo }
	}
	tests := []struct {
		name      string
		submitter string
		row       cells
		setup     func(st *lessee.State)
		status    lessee.Status // default rejected
		code      lessee.Code
		op        lessee.Operation // the echoed operation
		msg       string           // substring of the message
	}{
		{name: "OKKeepNoLessee", row: snapRow(vin1, "", ""), status: lessee.StatusUnchanged, op: lessee.OpKeep, msg: "as the snapshot says"},
		{name: "OKKeepNoLesseeIgnoresStart", row: snapRow(vin1, "", "2026-01-01"), status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKKeepPeriodEnded", row: snapRow(vin4, "", ""), setup: func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-02-01" },
			status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKKeepPeriodEndsToday", row: snapRow(vin4, "", ""), setup: func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-03-01" },
			status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKKeepFuturePeriodLeftAlone", row: snapRow(vin1, "", ""),
			setup:  periods(vin1, lessee.Period{ID: "f", LesseeID: person2, Start: "2026-06-01"}),
			status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKKeepSameLessee", row: snapRow(vin4, person1, ""), status: lessee.StatusUnchanged, op: lessee.OpKeep,
			msg: "already has this lessee, from 2025-06-01"},
		{name: "OKKeepSameLesseeOtherStart", row: snapRow(vin4, person1, "2020-01-01"), status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKKeepByRegNumber", row: cells{lessee.ColRegistrationNumber: "gh-12345", lessee.ColLesseeID: person1},
			status: lessee.StatusUnchanged, op: lessee.OpKeep},
		{name: "OKRemove", row: snapRow(vin4, "", ""), status: lessee.StatusApplied, op: lessee.OpRemove, msg: "end date 2026-03-01"},
		{name: "OKRemovePeriodEndingLater", row: snapRow(vin4, "", ""),
			setup:  func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-12-31" },
			status: lessee.StatusApplied, op: lessee.OpRemove},
		{name: "OKAdd", row: snapRow(vin1, person1, "2026-01-01"), status: lessee.StatusApplied, op: lessee.OpAdd, msg: "lessee added from 2026-01-01"},
		{name: "OKAddFuture", row: snapRow(vin1, dnumber, "2026-06-01"), status: lessee.StatusApplied, op: lessee.OpAdd},
		{name: "OKAddAfterEndedPeriod", row: snapRow(vin4, person2, "2026-02-01"),
			setup:  func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-02-01" },
			status: lessee.StatusApplied, op: lessee.OpAdd},
		{name: "OKAddUnchangedFuture", row: snapRow(vin1, person1, "2026-06-01"),
			setup:  periods(vin1, lessee.Period{ID: "f", LesseeID: person1, Start: "2026-06-01"}),
			status: lessee.StatusUnchanged, op: lessee.OpAdd},
		{name: "OKReplace", row: snapRow(vin4, person2, "2026-01-01"), status: lessee.StatusApplied, op: lessee.OpReplace,
			msg: "lessee replaced from 2026-01-01"},
		{name: "OKReplaceFuture", row: snapRow(vin4, orgC, "2026-06-01"), status: lessee.StatusApplied, op: lessee.OpReplace},
		{name: "OKReplaceUnchanged", row: snapRow(vin4, person2, "2026-06-01"),
			// A replace at a future date, uploaded again before that date.
			setup: periods(vin4, lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01", End: "2026-06-01"},
				lessee.Period{ID: "job0-1", LesseeID: person2, Start: "2026-06-01"}),
			status: lessee.StatusUnchanged, op: lessee.OpReplace, msg: "nothing changed"},

		{name: "ErrMissingStartAdd", row: snapRow(vin1, person1, ""), code: lessee.CodeMissingField, op: lessee.OpAdd,
			msg: "start_date: is empty"},
		{name: "ErrMissingStartReplace", row: snapRow(vin4, person2, ""), code: lessee.CodeMissingField, op: lessee.OpReplace,
			msg: "start_date: is empty"},
		{name: "ErrReplaceOnStartDay", row: snapRow(vin4, person2, "2025-06-01"), code: lessee.CodeEndBeforeStart, op: lessee.OpReplace,
			msg: "not after the start"},
		{name: "ErrReplaceBeforeStart", row: snapRow(vin4, person2, "2024-06-01"), code: lessee.CodeEndBeforeStart, op: lessee.OpReplace},
		{name: "ErrReplaceBlockedByLaterPeriod", row: snapRow(vin4, person2, "2026-01-01"),
			setup: periods(vin4, lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01", End: "2026-05-01"},
				lessee.Period{ID: "q", LesseeID: orgC, Start: "2026-06-01"}),
			code: lessee.CodeLesseeConflict, op: lessee.OpReplace},
		{name: "ErrReplaceOverOverlappingPeriods", row: snapRow(vin4, person2, "2026-06-01"),
			setup: periods(vin4, lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01"},
				lessee.Period{ID: "q", LesseeID: person2, Start: "2026-06-01"}),
			code: lessee.CodeLesseeConflict, op: lessee.OpReplace},
		{name: "ErrRemoveStartsToday", row: snapRow(vin4, "", ""), setup: func(st *lessee.State) { st.Vehicles[vin4].Periods[0].Start = "2026-03-01" },
			code: lessee.CodeEndBeforeStart, op: lessee.OpRemove, msg: "starts on 2026-03-01"},
		{name: "ErrAddOverEndedPeriod", row: snapRow(vin1, person1, "2025-01-01"),
			// add alone would call the row unchanged: the lessee's period
			// from that date is on file, but it has ended.
			setup: periods(vin1, lessee.Period{ID: "e", LesseeID: person1, Start: "2025-01-01", End: "2026-02-01"}),
			code:  lessee.CodeLesseeConflict, op: lessee.OpAdd, msg: "ended on 2026-02-01"},
		{name: "ErrAddConflictFuturePeriod", row: snapRow(vin1, person1, "2026-01-01"),
			setup: periods(vin1, lessee.Period{ID: "f", LesseeID: person2, Start: "2026-06-01"}),
			code:  lessee.CodeLesseeConflict, op: lessee.OpAdd},
		{name: "ErrInvalidLesseeID", row: snapRow(vin1, "01019012481", "2026-01-01"), code: lessee.CodeInvalidLesseeID},

		// Authority; the operation stays undisclosed.
		{name: "ErrTermsNotAccepted", row: snapRow(vin4, "", ""), setup: func(st *lessee.State) { st.Enterprises[orgS].Terms = nil },
			code: lessee.CodeTermsNotAccepted},
		{name: "ErrNotFleetOwner", row: snapRow(vin4, person1, ""), setup: func(st *lessee.State) { st.Enterprises[orgS].FleetOwner = false },
			code: lessee.CodeNotFleetOwner},
		{name: "ErrTermsNotAcceptedThirdParty", row: with(snapRow(vin2, "", ""), lessee.ColOnBehalfOf, orgF), code: lessee.CodeTermsNotAccepted},
		{name: "ErrNoDelegation", submitter: orgT, row: with(snapRow(vin3, "", ""), lessee.ColOnBehalfOf, orgC), code: lessee.CodeNoDelegation},
		{name: "ErrNotFleetOwnerOnBehalfOf", submitter: orgT, row: with(snapRow(vin2, "", ""), lessee.ColOnBehalfOf, orgX),
			code: lessee.CodeNotFleetOwner},
		{name: "ErrDelegationExpiredKeep", submitter: orgT, row: with(snapRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			// keep is judged on the processing date, whatever start_date says.
			setup: func(st *lessee.State) {
				delegationTo("2026-01-31")(st)
				periods(vin2, lessee.Period{ID: "p2", LesseeID: person1, Start: "2025-06-01"})(st)
			}, code: lessee.CodeDelegationExpired, msg: "before the effective date 2026-03-01"},
		{name: "ErrDelegationExpiredRemove", submitter: orgT, row: with(snapRow(vin2, "", ""), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) {
				delegationTo("2026-01-31")(st)
				periods(vin2, lessee.Period{ID: "p2", LesseeID: person1, Start: "2025-06-01"})(st)
			}, code: lessee.CodeDelegationExpired},
		{name: "ErrDelegationEndedBeforeProcessingDate", submitter: orgT, row: with(snapRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			// Authority is judged on the processing date first, whatever
			// the row's start_date: a snapshot states the fleet as it is.
			setup: delegationTo("2026-01-31"), code: lessee.CodeDelegationExpired, msg: "2026-03-01"},
		{name: "ErrDelegationNotYetValidAdd", submitter: orgT, row: with(snapRow(vin2, person1, "2024-06-01"), lessee.ColOnBehalfOf, orgF),
			code: lessee.CodeDelegationExpired, msg: "not yet valid"},
		{name: "ErrDelegationRevoked", submitter: orgT, row: with(snapRow(vin2, "", ""), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) {
				at := now.Add(-time.Hour)
				st.Delegations[[2]string{orgF, orgT}][0].RevokedAt = &at
			},
			code: lessee.CodeDelegationExpired, msg: "was revoked"},
		{name: "OKThirdPartyKeep", submitter: orgT, row: with(snapRow(vin2, "", ""), lessee.ColOnBehalfOf, orgF),
			status: lessee.StatusUnchanged, op: lessee.OpKeep},

		// The vehicle; the operation stays undisclosed.
		{name: "ErrNotOwner", row: snapRow(vin3, person2, ""), code: lessee.CodeNotOwner, msg: "not registered to fleet owner " + orgS},
		{name: "ErrNotOwnerRemove", row: snapRow(vin3, "", ""), code: lessee.CodeNotOwner},
		{name: "ErrNotOwnerByRegNumber", row: cells{lessee.ColRegistrationNumber: "EF12345"}, code: lessee.CodeNotOwner},
		{name: "ErrNotOwnerYet", row: snapRow(vin1, person1, "2023-12-31"), code: lessee.CodeNotOwner, msg: "only from 2024-01-01"},
		{name: "ErrVehicleNotFound", row: snapRow(vinNone, person1, "2026-01-01"), code: lessee.CodeVehicleNotFound},
		{name: "ErrRegVINMismatch", row: with(snapRow(vin1, "", ""), lessee.ColRegistrationNumber, "GH12345"), code: lessee.CodeRegVINMismatch},
		{name: "ErrAuthorityBeforeVehicleNotFound", row: snapRow(vinNone, "", ""),
			setup: func(st *lessee.State) { st.Enterprises[orgS].Terms = nil }, code: lessee.CodeTermsNotAccepted},
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
			before := clonePeriods(fx.state)
			job := testJob()
			if tt.submitter != "" {
				job.Submitter = tt.submitter
			}
			rs := snapRows(t, job, tt.row)
			d := DecideSnapshot(Config{}, job, fx.state, rs)
			checkSnapshotShape(t, rs, d.Outcomes)
			checkWrites(t, d, fx.state)
			o := d.Outcomes[0]
			if o.Status != tt.status || o.Code != tt.code || !strings.Contains(o.Message, tt.msg) {
				t.Fatalf("outcome %s %s %q; want %s %s with %q", o.Status, o.Code, o.Message, tt.status, tt.code, tt.msg)
			}
			if o.Echo.Operation != string(tt.op) {
				t.Errorf("echoed operation %q, want %q", o.Echo.Operation, tt.op)
			}
			if o.Status == lessee.StatusApplied && o.Operation != tt.op {
				t.Errorf("operation %q, want %q", o.Operation, tt.op)
			}
			if o.Status != lessee.StatusApplied {
				if !reflect.DeepEqual(before, clonePeriods(fx.state)) {
					t.Errorf("state changed: %+v", clonePeriods(fx.state))
				}
				if len(d.Writes.Opened)+len(d.Writes.Closed) != 0 {
					t.Errorf("writes %+v", d.Writes)
				}
			}
			for _, leak := range []string{person1, person2, orgC} {
				if strings.Contains(o.Message, leak) && !strings.Contains(tt.row[lessee.ColOnBehalfOf], leak) {
					t.Errorf("message %q reveals %s", o.Message, leak)
				}
			}
		})
	}
}

// TestDecideSnapshotReplace: a replace is one outcome, closing the period in
// force and opening the row's, and two writes.
func TestDecideSnapshotReplace(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	rs := snapRows(t, testJob(), with(snapRow(vin4, person2, "2026-01-01"), lessee.ColLesseeName, "Hansen"))
	d := DecideSnapshot(Config{}, testJob(), fx.state, rs)
	o := d.Outcomes[0]
	before := lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01"}
	closed := before
	closed.End = "2026-01-01"
	opened := lessee.Period{ID: "job1-0", LesseeID: person2, LesseeName: "Hansen", Start: "2026-01-01"}
	if o.Status != lessee.StatusApplied || o.Operation != lessee.OpReplace || o.ChangeID != "job1-0" ||
		*o.Before != before || *o.After != opened || o.VIN != vin4 || o.RegistrationNumber != "GH12345" || o.OnBehalfOf != orgS {
		t.Fatalf("outcome %+v", o)
	}
	want := lessee.Writes{
		Closed: []lessee.PeriodWrite{{VIN: vin4, Period: closed, Line: o.Line}},
		Opened: []lessee.PeriodWrite{{VIN: vin4, Period: opened, Line: o.Line}},
	}
	if !reflect.DeepEqual(d.Writes, want) {
		t.Fatalf("writes %+v, want %+v", d.Writes, want)
	}
	if got := fx.state.Vehicles[vin4].Periods; !reflect.DeepEqual(got, []lessee.Period{closed, opened}) {
		t.Fatalf("state periods %+v", got)
	}
}

func TestDecideSnapshotDuplicate(t *testing.T) {
	t.Parallel()
	t.Run("ErrByVINThenRegNumber", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := snapRows(t, testJob(),
			snapRow(vin4, person1, ""),                          // keep
			cells{lessee.ColRegistrationNumber: "GH 12345"},     // would remove
			snapRow(vin4, person2, "2026-01-01"),                // would replace
			snapRow(vin3, "", ""),                               // NOT_OWNER: not named
			cells{lessee.ColRegistrationNumber: "EF12345"},      // the same: NOT_OWNER again, no duplicate
			snapRow(vin1, "01019012481", "2026-01-01"),          // a Problem, but names vin1
			snapRow(vin1, person1, "2026-01-01"),                // so this names it again
			with(snapRow(vin1, "", ""), lessee.ColVIN, "short"), // a Problem again
			snapRow(vinNone, "", ""))                            // not found: names nothing
		d := DecideSnapshot(Config{}, testJob(), fx.state, rs)
		out := d.Outcomes
		checkSnapshotShape(t, rs, out)
		checkWrites(t, d, fx.state)
		want := []struct {
			status lessee.Status
			code   lessee.Code
			field  string
		}{
			{lessee.StatusUnchanged, "", ""},
			{lessee.StatusRejected, lessee.CodeDuplicateVehicle, "registration_number"},
			{lessee.StatusRejected, lessee.CodeDuplicateVehicle, "vin"},
			{lessee.StatusRejected, lessee.CodeNotOwner, ""},
			{lessee.StatusRejected, lessee.CodeNotOwner, ""},
			{lessee.StatusRejected, lessee.CodeInvalidLesseeID, ""},
			{lessee.StatusRejected, lessee.CodeDuplicateVehicle, "vin"},
			{lessee.StatusRejected, lessee.CodeInvalidVIN, ""},
			{lessee.StatusRejected, lessee.CodeVehicleNotFound, ""},
		}
		for i, w := range want {
			o := out[i]
			if o.Status != w.status || o.Code != w.code || !strings.HasPrefix(o.Message, w.field) {
				t.Errorf("row %d: %s %s %q; want %s %s on %s", i, o.Status, o.Code, o.Message, w.status, w.code, w.field)
			}
			if o.Code == lessee.CodeDuplicateVehicle && (o.Echo.Operation != "" || !strings.Contains(o.Message, "earlier row")) {
				t.Errorf("row %d: duplicate %+v", i, o)
			}
		}
		if want := []string{vin4, vin1}; !slices.Equal(d.Named, want) {
			t.Errorf("Named = %v, want %v", d.Named, want)
		}
		if got := fx.state.Vehicles[vin4].Periods; len(got) != 1 || got[0].End != "" {
			t.Errorf("a duplicate changed the vehicle: %+v", got)
		}
	})
	t.Run("ErrAcrossChunks", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		job := testJob()
		first := DecideSnapshot(Config{}, job, fx.state, snapRows(t, job, snapRow(vin4, person1, "")))
		if !slices.Equal(first.Named, []string{vin4}) || !fx.state.Named[vin4] {
			t.Fatalf("first chunk named %v, state %v", first.Named, fx.state.Named)
		}
		// The next chunk, with the state storage loads for it.
		st := newFixture().state
		for _, vin := range first.Named {
			st.Named[vin] = true
		}
		rs := []lessee.Row{ParseSnapshotRow(Config{}, job, raw(1, cells{lessee.ColRegistrationNumber: "GH12345"}))}
		d := DecideSnapshot(Config{}, job, st, rs)
		if o := d.Outcomes[0]; o.Code != lessee.CodeDuplicateVehicle || len(d.Named) != 0 {
			t.Fatalf("outcome %+v, named %v", o, d.Named)
		}
		if len(d.Writes.Closed)+len(d.Writes.Opened) != 0 || st.Vehicles[vin4].Periods[0].End != "" {
			t.Fatalf("the duplicate changed the state")
		}
	})
	t.Run("ErrNilState", func(t *testing.T) {
		t.Parallel()
		d := DecideSnapshot(Config{}, testJob(), nil, snapRows(t, testJob(), snapRow(vin1, "", "")))
		if len(d.Outcomes) != 1 || d.Outcomes[0].Code != lessee.CodeTermsNotAccepted || len(d.Named) != 0 {
			t.Fatalf("decision %+v", d)
		}
	})
	t.Run("OKNilNamed", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		fx.state.Named = nil
		d := DecideSnapshot(Config{}, testJob(), fx.state, snapRows(t, testJob(), snapRow(vin1, "", ""), snapRow(vin1, "", "")))
		if d.Outcomes[0].Status != lessee.StatusUnchanged || d.Outcomes[1].Code != lessee.CodeDuplicateVehicle {
			t.Fatalf("outcomes %+v", d.Outcomes)
		}
	})
}

// TestDecideSnapshotAbsent: the rows the worker adds for vehicles a
// snapshot left out (no lessee, Line 0) follow the same rules.
func TestDecideSnapshotAbsent(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	rs := append(snapRows(t, testJob(), snapRow(vin1, person1, "2026-01-01")),
		absentRow(1, vin4), absentRow(2, vin1), absentRow(3, vin3))
	d := DecideSnapshot(Config{}, testJob(), fx.state, rs)
	out := d.Outcomes
	checkSnapshotShape(t, rs, out)
	checkWrites(t, d, fx.state)
	if o := out[1]; o.Status != lessee.StatusApplied || o.Operation != lessee.OpRemove || o.Line != 0 ||
		o.After.End != "2026-03-01" || o.Echo.Operation != "remove" {
		t.Errorf("absent vin4: %+v", o)
	}
	if o := out[2]; o.Code != lessee.CodeDuplicateVehicle {
		t.Errorf("absent row for a named vehicle: %+v", o)
	}
	if o := out[3]; o.Code != lessee.CodeNotOwner {
		t.Errorf("absent row for another fleet's vehicle: %+v", o)
	}
	if want := []string{vin1, vin4}; !slices.Equal(d.Named, want) {
		t.Errorf("Named = %v, want %v", d.Named, want)
	}
	fx = newFixture()
	if o := DecideSnapshot(Config{}, testJob(), fx.state, []lessee.Row{absentRow(0, vin1)}).Outcomes[0]; o.Status != lessee.StatusUnchanged || o.Echo.Operation != "keep" {
		t.Errorf("absent vehicle without a lessee: %+v", o)
	}
}

// TestDecideSnapshotRerun: a snapshot uploaded twice changes nothing the
// second time, every row a keep (or unchanged as before).
func TestDecideSnapshotRerun(t *testing.T) {
	t.Parallel()
	files := map[string][]cells{
		"Replace":        {snapRow(vin4, person2, "2026-01-01")},
		"ReplaceFuture":  {snapRow(vin4, person2, "2026-06-01")},
		"AddAndRemove":   {snapRow(vin1, dnumber, "2026-02-01"), snapRow(vin4, "", "")},
		"AddFuture":      {snapRow(vin1, orgC, "2026-09-01")},
		"WithRejections": {snapRow(vin1, person1, "2026-01-01"), snapRow(vin3, "", ""), snapRow(vin4, person2, "")},
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture()
			job := testJob()
			rs := snapRows(t, job, file...)
			first := DecideSnapshot(Config{}, job, fx.state, rs).Outcomes
			checkSnapshotShape(t, rs, first)
			before := clonePeriods(fx.state)
			fx.state.Named = map[string]bool{}
			job.ID = "job2"
			second := DecideSnapshot(Config{}, job, fx.state, rs)
			if len(second.Writes.Opened)+len(second.Writes.Closed) != 0 || !reflect.DeepEqual(before, clonePeriods(fx.state)) {
				t.Fatalf("second run changed the state: %+v", second.Writes)
			}
			for i, o := range second.Outcomes {
				if first[i].Status == lessee.StatusRejected {
					if o.Code != first[i].Code {
						t.Errorf("row %d: %s, first run %s", i, o.Code, first[i].Code)
					}
					continue
				}
				if o.Status != lessee.StatusUnchanged {
					t.Errorf("row %d second run: %s %s %q", i, o.Status, o.Code, o.Message)
				}
			}
		})
	}
}

// TestDecideSnapshotExport: an export of the fleet, uploaded unchanged as a
// snapshot, is keep on every line, whatever the start dates.
func TestDecideSnapshotExport(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	fx.state.Vehicles[vin4].OwnerSince = "2025-01-01"
	rs := snapRows(t, testJob(),
		cells{lessee.ColRegistrationNumber: "AB12345", lessee.ColVIN: vin1},
		cells{lessee.ColRegistrationNumber: "GH12345", lessee.ColVIN: vin4, lessee.ColLesseeID: person1, lessee.ColStartDate: "2025-06-01"})
	for _, o := range DecideSnapshot(Config{}, testJob(), fx.state, rs).Outcomes {
		if o.Status != lessee.StatusUnchanged || o.Echo.Operation != "keep" {
			t.Errorf("row %d: %s %s %q", o.Line, o.Status, o.Code, o.Message)
		}
	}
}

func TestKeysForSnapshot(t *testing.T) {
	t.Parallel()
	job := testJob()
	rs := snapRows(t, job, snapRow(vin1, person1, "2026-01-01"), snapRow(vin4, "", ""), snapRow(vin2, person1, "2026-06-01"))
	want := map[string]lessee.Date{vin1: "2026-01-01", vin4: job.ProcessingDate, vin2: job.ProcessingDate}
	if got := KeysFor(job, rs).Since; !reflect.DeepEqual(got, want) {
		t.Fatalf("Since = %v, want %v", got, want)
	}
}

// TestDecideSnapshotWithTrimmedHistory: as TestDecideWithTrimmedHistory,
// for snapshots: leaving out the periods KeysFor says are not needed
// changes no outcome.
func TestDecideSnapshotWithTrimmedHistory(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	job := testJob()
	day := func(n int) lessee.Date {
		return lessee.DateOf(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n))
	}
	lessees := []string{"", person1, person2}
	regs := map[string]string{vin1: "AB12345", vin4: "GH12345"}
	left := 0
	for iter := range 3000 {
		histories := map[string][]lessee.Period{}
		for _, vin := range []string{vin1, vin4} {
			d := r.IntN(60)
			for i := range r.IntN(7) {
				start := d + r.IntN(40) - 10
				end := start + 1 + r.IntN(160)
				histories[vin] = append(histories[vin], lessee.Period{
					ID: fmt.Sprintf("%s-%d", vin, i), LesseeID: lessees[1+r.IntN(2)], Start: day(start), End: day(end),
				})
				d = end
			}
			if n := len(histories[vin]); n > 0 && r.IntN(2) == 0 {
				histories[vin][n-1].End = ""
			}
		}
		var in []cells
		for range 1 + r.IntN(3) {
			vin := []string{vin1, vin4}[r.IntN(2)]
			c := cells{lessee.ColLesseeID: lessees[r.IntN(3)]}
			if r.IntN(4) == 0 {
				c[lessee.ColRegistrationNumber] = regs[vin]
			} else {
				c[lessee.ColVIN] = vin
			}
			if r.IntN(4) != 0 {
				c[lessee.ColStartDate] = string(day(r.IntN(900)))
			}
			in = append(in, c)
		}
		rs := snapRows(t, job, in...)
		keys := KeysFor(job, rs)
		full, trimmed := newFixture().state, newFixture().state
		for vin, reg := range regs {
			ps := histories[vin]
			full.Vehicles[vin].Periods = append([]lessee.Period(nil), ps...)
			trimmed.Vehicles[vin].Periods = nil
			since := keys.HistoryFrom(vin, reg)
			for _, p := range ps {
				if p.End.IsZero() || !p.End.Before(since) {
					trimmed.Vehicles[vin].Periods = append(trimmed.Vehicles[vin].Periods, p)
				} else {
					left++
				}
			}
		}
		want := DecideSnapshot(Config{}, job, full, rs).Outcomes
		got := DecideSnapshot(Config{}, job, trimmed, rs).Outcomes
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iteration %d: history %+v\nrows %+v\nwith the trimmed history: %+v\nwith all of it:         %+v",
				iter, histories, in, got, want)
		}
	}
	if left < 500 {
		t.Fatalf("only %d periods were left out over all iterations: the test does not exercise trimming", left)
	}
}

func FuzzParseSnapshotRow(f *testing.F) {
	f.Add("AB 12345", vin1, person1, "2026-01-01", "", "ref", "add", "2026-02-01", uint8(0))
	f.Add("", vin4, "", "", "", "", "", "", uint8(1))
	f.Add("GH12345", "", person2, "1.6.2025", orgF, "", "", "", uint8(2))
	f.Add("EL-1", "short", "1.01901E+10", "46023", "123", person1, "x", "y", uint8(5))
	f.Add("", "", "", "", "", "", "", "", uint8(3))
	f.Fuzz(func(t *testing.T, reg, vin, id, start, obo, ref, op, end string, kinds uint8) {
		r := raw(0, cells{
			lessee.ColRegistrationNumber: reg, lessee.ColVIN: vin, lessee.ColLesseeID: id, lessee.ColStartDate: start,
			lessee.ColOnBehalfOf: obo, lessee.ColReference: ref, lessee.ColOperation: op, lessee.ColEndDate: end,
		})
		for col := range r.Cells {
			r.Cells[col].Kind = lessee.CellKind((int(kinds) >> col) % 3)
		}
		job := testJob()
		row := ParseSnapshotRow(Config{AllowSynthetic: kinds&1 == 1}, job, r)
		c := row.Change
		if p := row.Problem; p != nil {
			if p.Code == "" || p.Message == "" || !strings.Contains(p.Message, ": ") {
				t.Fatalf("incomplete problem %+v", *p)
			}
			if elevenDigits(p.Message) {
				t.Fatalf("message %q carries an 11-digit number", p.Message)
			}
			// Only the vehicle, and only what is valid on its own.
			if (c != lessee.Change{RegistrationNumber: c.RegistrationNumber, VIN: c.VIN}) {
				t.Fatalf("change %+v with a problem", c)
			}
			if c.VIN != "" && ParseSnapshotRow(Config{}, job, raw(0, cells{lessee.ColVIN: vin})).Change.VIN != c.VIN {
				t.Fatalf("vin %q kept from %q, which is not valid on its own", c.VIN, vin)
			}
			if c.RegistrationNumber != "" &&
				ParseSnapshotRow(Config{}, job, raw(0, cells{lessee.ColRegistrationNumber: reg})).Change.RegistrationNumber != c.RegistrationNumber {
				t.Fatalf("registration number %q kept from %q, which is not valid on its own", c.RegistrationNumber, reg)
			}
		} else {
			if c.Operation != "" || c.EndDate != job.ProcessingDate {
				t.Fatalf("change %+v: not ready for derivation", c)
			}
			if c.VIN == "" && c.RegistrationNumber == "" {
				t.Fatalf("no vehicle in %+v", c)
			}
			if _, err := ParseDate(string(c.StartDate)); !c.StartDate.IsZero() && err != nil {
				t.Fatalf("start date %q", c.StartDate)
			}
			if (c.LesseeID == "") != (strings.TrimSpace(id) == "") {
				t.Fatalf("lessee %q from %q", c.LesseeID, id)
			}
		}
		if row.Echo.Operation != "" {
			t.Fatalf("echoed operation %q", row.Echo.Operation)
		}
		for _, v := range []string{row.Echo.Reference, row.Echo.RegistrationNumber, row.Echo.VIN, row.Echo.Lessee} {
			if elevenDigits(v) {
				t.Fatalf("echo %+v carries an 11-digit number", row.Echo)
			}
		}
		if l := row.Echo.Lessee; len(l) > 2 && !strings.HasPrefix(l, "*") && len(l) != 9 {
			t.Fatalf("lessee echo %q is not masked", l)
		}
		rs := []lessee.Row{row, row}
		d := DecideSnapshot(Config{}, job, newFixture().state, rs)
		checkSnapshotShape(t, rs, d.Outcomes)
		if row.Problem == nil && len(d.Named) == 1 && d.Outcomes[1].Code != lessee.CodeDuplicateVehicle {
			t.Fatalf("the same row twice: %+v", d.Outcomes)
		}
	})
}

// TestDecideSnapshotRevealsNothingWithoutAuthority: a former delegate
// sends rows for a vehicle of the fleet it no longer acts for, once with
// the vehicle's lessee and once with another, and by VIN then by
// registration number: every row gets the same code and message, and
// none shows a derived operation or a duplicate, so nothing tells who
// leases the vehicle or which identifiers belong together.
func TestDecideSnapshotRevealsNothingWithoutAuthority(t *testing.T) {
	t.Parallel()
	fx := newFixture()
	fx.state.Delegations[[2]string{orgF, orgT}][0].ValidTo = "2026-01-31"
	fx.state.Vehicles[vin2].Periods = []lessee.Period{{ID: "p2", LesseeID: person1, Start: "2025-06-01"}}
	job := testJob()
	job.Submitter = orgT
	reg := fx.state.Vehicles[vin2].RegistrationNumber
	rs := snapRows(t, job,
		with(snapRow(vin2, person1, "2026-02-01"), lessee.ColOnBehalfOf, orgF),
		with(snapRow(vin2, person2, "2026-02-01"), lessee.ColOnBehalfOf, orgF),
		cells{lessee.ColRegistrationNumber: reg, lessee.ColLesseeID: person2, lessee.ColStartDate: "2026-02-01", lessee.ColOnBehalfOf: orgF})
	before := slices.Clone(fx.state.Vehicles[vin2].Periods)
	d := DecideSnapshot(Config{}, job, fx.state, rs)
	for i, o := range d.Outcomes {
		if o.Status != lessee.StatusRejected || o.Code != lessee.CodeDelegationExpired || o.Echo.Operation != "" ||
			o.Message != d.Outcomes[0].Message {
			t.Errorf("row %d: %s %s %q, operation %q; want the first row's DELEGATION_EXPIRED and message", i, o.Status, o.Code, o.Message, o.Echo.Operation)
		}
	}
	if len(d.Named) != 0 || !slices.Equal(fx.state.Vehicles[vin2].Periods, before) {
		t.Errorf("named %v, periods %+v; want nothing named or changed", d.Named, fx.state.Vehicles[vin2].Periods)
	}
}
