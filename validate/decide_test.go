package validate

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// Enterprises of the fixture.
const (
	orgS = "923609016" // the submitter: fleet owner with the lessee API agreement
	orgF = "974760673" // a fleet owner that delegated to orgT
	orgT = "987654325" // a third party with the third-party agreement
	orgC = "922222223" // a competing fleet owner
	orgX = "998877660" // known to nobody
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	state *lessee.State
}

// newFixture returns a registry of:
//   - vin1 / AB12345: orgS's, no lessee
//   - vin2 / CD12345: orgF's, no lessee
//   - vin3 / EF12345: orgC's, person2 leasing since 2025-01-01
//   - vin4 / GH12345: orgS's, person1 leasing since 2025-06-01
func newFixture() fixture {
	st := lessee.NewState()
	accepted := func(org string, a lessee.Agreement) lessee.Acceptance {
		return lessee.Acceptance{OrgNr: org, Agreement: a, Version: "1", AcceptedAt: now.Add(-24 * time.Hour)}
	}
	st.Enterprises[orgS] = &lessee.Enterprise{OrgNr: orgS, Name: "Submitter Leasing", FleetOwner: true,
		Terms: []lessee.Acceptance{accepted(orgS, lessee.AgreementLesseeAPI)}}
	st.Enterprises[orgF] = &lessee.Enterprise{OrgNr: orgF, Name: "Fleet Owner", FleetOwner: true,
		Terms: []lessee.Acceptance{accepted(orgF, lessee.AgreementLesseeAPI)}}
	st.Enterprises[orgT] = &lessee.Enterprise{OrgNr: orgT, Name: "Third Party",
		Terms: []lessee.Acceptance{accepted(orgT, lessee.AgreementThirdParty)}}
	st.Enterprises[orgC] = &lessee.Enterprise{OrgNr: orgC, Name: "Competitor", FleetOwner: true,
		Terms: []lessee.Acceptance{accepted(orgC, lessee.AgreementLesseeAPI)}}
	st.Delegations[[2]string{orgF, orgT}] = []lessee.Delegation{{FleetOwner: orgF, Delegate: orgT, ValidFrom: "2025-01-01"}}
	vehicle := func(vin, reg, owner string, periods ...lessee.Period) {
		st.Vehicles[vin] = &lessee.Vehicle{VIN: vin, RegistrationNumber: reg, Owner: owner, OwnerSince: "2024-01-01", Periods: periods}
		st.ByReg[reg] = vin
	}
	vehicle(vin1, "AB12345", orgS)
	vehicle(vin2, "CD12345", orgF)
	vehicle(vin3, "EF12345", orgC, lessee.Period{ID: "p3", LesseeID: person2, Start: "2025-01-01"})
	vehicle(vin4, "GH12345", orgS, lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01"})
	return fixture{state: st}
}

// rows parses cells into rows with index i for the i-th cells.
func rows(tb testing.TB, job Job, in ...cells) []lessee.Row {
	tb.Helper()
	out := make([]lessee.Row, len(in))
	for i, c := range in {
		out[i] = ParseRow(Config{}, job, raw(i, c))
	}
	return out
}

func addRow(vin, id, start string) cells {
	return cells{lessee.ColOperation: "add", lessee.ColVIN: vin, lessee.ColLesseeID: id, lessee.ColStartDate: start}
}

func removeRow(vin, id, end string) cells {
	return cells{lessee.ColOperation: "remove", lessee.ColVIN: vin, lessee.ColLesseeID: id, lessee.ColEndDate: end}
}

func with(c cells, col lessee.Column, v string) cells {
	c[col] = v
	return c
}

// checkShape asserts what every outcome must hold whatever its status.
// checkWrites checks a decision's writes against its applied outcomes and
// the state after it: each applied outcome's period is written once, on
// its vehicle, as an insert when the chunk opened it and as an update
// otherwise, and every write is the period as the state ends up.
func checkWrites(tb testing.TB, d lessee.Decision, st *lessee.State) {
	tb.Helper()
	written := map[string]lessee.PeriodWrite{}
	opened := map[string]bool{}
	for _, list := range []struct {
		writes []lessee.PeriodWrite
		opened bool
	}{{d.Writes.Opened, true}, {d.Writes.Closed, false}} {
		for _, w := range list.writes {
			if _, dup := written[w.Period.ID]; dup {
				tb.Errorf("period %s written twice", w.Period.ID)
			}
			written[w.Period.ID], opened[w.Period.ID] = w, list.opened
			v := st.Vehicles[w.VIN]
			if v == nil || !slices.Contains(v.Periods, w.Period) {
				tb.Errorf("write %+v is not the period as the state ends up", w)
			}
		}
	}
	openedHere := map[string]bool{}
	for _, o := range d.Outcomes {
		if o.Status != lessee.StatusApplied {
			continue
		}
		if o.Operation == lessee.OpAdd || o.Operation == lessee.OpReplace {
			openedHere[o.After.ID] = true
		}
		w, ok := written[o.After.ID]
		switch {
		case !ok:
			tb.Errorf("row %d: applied, but its period %s is not written", o.Line, o.After.ID)
		case w.VIN != o.VIN:
			tb.Errorf("row %d: period %s written on %s, the outcome's vehicle is %s", o.Line, o.After.ID, w.VIN, o.VIN)
		case opened[o.After.ID] != openedHere[o.After.ID]:
			tb.Errorf("row %d: period %s written as insert=%v, opened in the chunk=%v", o.Line, o.After.ID, opened[o.After.ID], openedHere[o.After.ID])
		}
	}
	if len(written) > 0 && len(openedHere) == 0 && len(d.Writes.Opened) > 0 {
		tb.Errorf("inserts %+v without an applied add", d.Writes.Opened)
	}
}

func checkShape(tb testing.TB, rows []lessee.Row, out []lessee.Outcome) {
	tb.Helper()
	if len(out) != len(rows) {
		tb.Fatalf("%d outcomes for %d rows", len(out), len(rows))
	}
	for i, o := range out {
		r := rows[i]
		if o.Index != r.Index || o.Line != r.Line || o.Echo != r.Echo {
			tb.Errorf("row %d: outcome does not carry the row's index, line and echo", i)
		}
		if o.Message == "" || elevenDigits(o.Message) {
			tb.Errorf("row %d: bad message %q", i, o.Message)
		}
		switch o.Status {
		case lessee.StatusApplied:
			if o.Code != "" || o.ChangeID != lessee.ChangeID("job1", r.Index) || o.VIN == "" || o.OnBehalfOf == "" ||
				o.After == nil || (o.Operation != lessee.OpAdd && o.Operation != lessee.OpRemove) {
				tb.Errorf("row %d: incomplete applied outcome %+v", i, o)
			}
			if o.Operation == lessee.OpRemove && (o.Before == nil || o.Before.ID != o.After.ID) {
				tb.Errorf("row %d: close without the period before", i)
			}
		case lessee.StatusUnchanged:
			if o.Code != "" || o.ChangeID != "" || o.Operation != "" || o.After != nil {
				tb.Errorf("row %d: unchanged outcome carries a change: %+v", i, o)
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

func TestDecide(t *testing.T) {
	t.Parallel()
	revoked := func(at time.Time) func(st *lessee.State) {
		return func(st *lessee.State) {
			st.Delegations[[2]string{orgF, orgT}][0].RevokedAt = &at
		}
	}
	tests := []struct {
		name      string
		submitter string
		row       cells
		setup     func(st *lessee.State)
		status    lessee.Status
		code      lessee.Code
		msg       string // substring of the message
	}{
		{name: "OKAdd", row: addRow(vin1, person1, "2026-01-01"), status: lessee.StatusApplied, msg: "lessee added from 2026-01-01"},
		{name: "OKAddByRegNumber", row: cells{lessee.ColOperation: "add", lessee.ColRegistrationNumber: "ab 12345",
			lessee.ColLesseeID: dnumber, lessee.ColStartDate: "2026-01-01", lessee.ColEndDate: "2026-12-31"},
			status: lessee.StatusApplied, msg: "to 2026-12-31"},
		{name: "OKAddEnterpriseLessee", row: addRow(vin1, orgC, "2026-01-01"), status: lessee.StatusApplied},
		{name: "OKAddOnBehalfOfSelf", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgS), status: lessee.StatusApplied},
		{name: "OKRemove", row: removeRow(vin4, person1, "2026-02-01"), status: lessee.StatusApplied, msg: "end date 2026-02-01"},
		{name: "OKRemoveWithoutLessee", row: removeRow(vin4, "", ""), status: lessee.StatusApplied, msg: "end date 2026-03-01"},
		{name: "ErrRemoveOnStartDay", row: removeRow(vin4, person1, "2025-06-01"), code: lessee.CodeEndBeforeStart, msg: "not after the start"},
		{name: "OKThirdParty", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			status: lessee.StatusApplied},
		{name: "OKThirdPartyDelegationRevokedLater", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: revoked(now.Add(30 * 24 * time.Hour)), status: lessee.StatusApplied},
		{name: "OKThirdPartyOneOfSeveralDelegations", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) {
				k := [2]string{orgF, orgT}
				st.Delegations[k] = append([]lessee.Delegation{{ValidFrom: "2020-01-01", ValidTo: "2020-12-31"}}, st.Delegations[k]...)
			}, status: lessee.StatusApplied},
		{name: "OKUnchangedAdd", row: addRow(vin4, person1, "2025-06-01"), status: lessee.StatusUnchanged, msg: "nothing changed"},
		{name: "OKUnchangedAddSameEnd", row: with(addRow(vin4, person1, "2025-06-01"), lessee.ColEndDate, "2026-06-01"),
			setup:  func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-06-01" },
			status: lessee.StatusUnchanged},
		{name: "OKUnchangedRemove", row: removeRow(vin4, person1, "2026-01-01"),
			setup:  func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-01-01" },
			status: lessee.StatusUnchanged, msg: "already ends on 2026-01-01"},

		{name: "ErrMissingField", row: cells{lessee.ColOperation: "add", lessee.ColVIN: vin1, lessee.ColStartDate: "2026-01-01"},
			code: lessee.CodeMissingField, msg: "lessee_id"},
		{name: "ErrInvalidOperation", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColOperation, "endre"), code: lessee.CodeInvalidOperation},
		{name: "ErrInvalidRegNumber", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColRegistrationNumber, "A"), code: lessee.CodeInvalidRegNumber},
		{name: "ErrInvalidVIN", row: addRow("WVWZZZ1JZXW00000", person1, "2026-01-01"), code: lessee.CodeInvalidVIN},
		{name: "ErrInvalidLesseeID", row: addRow(vin1, "01019012481", "2026-01-01"), code: lessee.CodeInvalidLesseeID},
		{name: "ErrInvalidOnBehalfOf", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColOnBehalfOf, "123"), code: lessee.CodeInvalidOnBehalfOf},
		{name: "ErrInvalidDate", row: addRow(vin1, person1, "2026-02-30"), code: lessee.CodeInvalidDate},
		{name: "ErrFieldTooLong", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColReference, strings.Repeat("r", 201)), code: lessee.CodeFieldTooLong},
		{name: "ErrEndBeforeStartAdd", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColEndDate, "2025-01-01"), code: lessee.CodeEndBeforeStart},
		// Before the period's start nothing is in force: there is nothing to end.
		{name: "ErrRemoveBeforeStart", row: removeRow(vin4, person1, "2025-05-31"), code: lessee.CodeNoActiveLessee, msg: "no active lessee on 2025-05-31"},

		{name: "ErrTermsNotAcceptedOwn", row: addRow(vin1, person1, "2026-01-01"),
			setup: func(st *lessee.State) { st.Enterprises[orgS].Terms = nil },
			code:  lessee.CodeTermsNotAccepted, msg: "lessee API agreement"},
		{name: "ErrTermsNotAcceptedOwnLater", row: addRow(vin1, person1, "2026-01-01"),
			setup: func(st *lessee.State) { st.Enterprises[orgS].Terms[0].AcceptedAt = now.Add(time.Minute) },
			code:  lessee.CodeTermsNotAccepted},
		{name: "ErrTermsNotAcceptedUnknownSubmitter", submitter: orgX, row: addRow(vin1, person1, "2026-01-01"), code: lessee.CodeTermsNotAccepted},
		{name: "ErrTermsNotAcceptedOnlyThirdParty", submitter: orgT, row: addRow(vin2, person1, "2026-01-01"),
			code: lessee.CodeTermsNotAccepted, msg: "fill on_behalf_of"},
		{name: "ErrTermsNotAcceptedThirdParty", row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			code: lessee.CodeTermsNotAccepted, msg: "third-party agreement"},
		{name: "ErrTermsNotAcceptedFleetOwner", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) { st.Enterprises[orgF].Terms = nil },
			code:  lessee.CodeTermsNotAccepted, msg: "fleet owner " + orgF + " has not accepted"},
		{name: "ErrNotFleetOwner", row: addRow(vin1, person1, "2026-01-01"),
			setup: func(st *lessee.State) { st.Enterprises[orgS].FleetOwner = false },
			code:  lessee.CodeNotFleetOwner, msg: "fleet-owner role"},
		{name: "ErrNotFleetOwnerOnBehalfOf", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) { st.Enterprises[orgF].FleetOwner = false },
			code:  lessee.CodeNotFleetOwner, msg: "on_behalf_of"},
		{name: "ErrNotFleetOwnerUnknown", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgX),
			code: lessee.CodeNotFleetOwner},
		{name: "ErrNoDelegation", submitter: orgT, row: with(addRow(vin3, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgC),
			code: lessee.CodeNoDelegation},
		{name: "ErrDelegationExpired", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) { st.Delegations[[2]string{orgF, orgT}][0].ValidTo = "2025-12-31" },
			code:  lessee.CodeDelegationExpired, msg: "has expired: it ended on 2025-12-31"},
		{name: "OKDelegationLastDay", submitter: orgT, row: with(addRow(vin2, person1, "2025-12-31"), lessee.ColOnBehalfOf, orgF),
			setup:  func(st *lessee.State) { st.Delegations[[2]string{orgF, orgT}][0].ValidTo = "2025-12-31" },
			status: lessee.StatusApplied},
		{name: "ErrDelegationNotYetValid", submitter: orgT, row: with(addRow(vin2, person1, "2024-12-31"), lessee.ColOnBehalfOf, orgF),
			code: lessee.CodeDelegationExpired, msg: "not yet valid"},
		{name: "ErrDelegationRevoked", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: revoked(now.Add(-time.Hour)), code: lessee.CodeDelegationExpired, msg: "was revoked"},
		{name: "ErrDelegationRevokedBeforeEffective", submitter: orgT, row: with(removeRow(vin2, "", "2026-06-01"), lessee.ColOnBehalfOf, orgF),
			setup: revoked(now.Add(30 * 24 * time.Hour)), code: lessee.CodeDelegationExpired, msg: "is revoked from 2026-03-31"},
		{name: "ErrDelegationReasonRanked", submitter: orgT, row: with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			setup: func(st *lessee.State) {
				st.Delegations[[2]string{orgF, orgT}] = []lessee.Delegation{
					{ValidFrom: "2020-01-01", ValidTo: "2020-12-31"},
					{ValidFrom: "2027-01-01"},
				}
			}, code: lessee.CodeDelegationExpired, msg: "not yet valid"},
		{name: "ErrVehicleNotFoundVIN", row: addRow(vinNone, person1, "2026-01-01"), code: lessee.CodeVehicleNotFound, msg: "vin"},
		{name: "ErrVehicleNotFoundReg", row: cells{lessee.ColOperation: "add", lessee.ColRegistrationNumber: "ZZ99999",
			lessee.ColLesseeID: person1, lessee.ColStartDate: "2026-01-01"}, code: lessee.CodeVehicleNotFound, msg: "registration_number"},
		{name: "ErrVehicleNotFoundBoth", row: with(addRow(vinNone, person1, "2026-01-01"), lessee.ColRegistrationNumber, "ZZ99999"),
			code: lessee.CodeVehicleNotFound},
		{name: "ErrRegVINMismatch", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColRegistrationNumber, "GH12345"),
			code: lessee.CodeRegVINMismatch},
		{name: "ErrRegVINMismatchRegUnknown", row: with(addRow(vin1, person1, "2026-01-01"), lessee.ColRegistrationNumber, "ZZ99999"),
			code: lessee.CodeRegVINMismatch},
		{name: "ErrRegVINMismatchVINUnknown", row: with(addRow(vinNone, person1, "2026-01-01"), lessee.ColRegistrationNumber, "AB12345"),
			code: lessee.CodeRegVINMismatch},
		{name: "ErrNotOwner", row: addRow(vin3, person1, "2026-01-01"), code: lessee.CodeNotOwner, msg: "not registered to fleet owner " + orgS},
		{name: "ErrNotOwnerYet", row: addRow(vin1, person1, "2023-12-31"), code: lessee.CodeNotOwner, msg: "only from 2024-01-01"},
		{name: "ErrLesseeConflict", row: addRow(vin4, person2, "2026-01-01"), code: lessee.CodeLesseeConflict,
			msg: "start_date: overlaps the lessee registered from 2025-06-01 with no end date; end that period first with a remove on 2026-01-01"},
		{name: "ErrLesseeConflictOtherStart", row: addRow(vin4, person1, "2026-01-01"), code: lessee.CodeLesseeConflict, msg: "from 2025-06-01"},
		{name: "ErrLesseeConflictOtherEnd", row: with(addRow(vin4, person1, "2025-06-01"), lessee.ColEndDate, "2026-06-01"),
			code: lessee.CodeLesseeConflict, msg: "with no end date"},
		{name: "ErrLesseeConflictFuturePeriod", row: addRow(vin1, person1, "2026-01-01"),
			setup: func(st *lessee.State) {
				st.Vehicles[vin1].Periods = []lessee.Period{{ID: "f", LesseeID: person2, Start: "2026-06-01", End: "2026-09-01"}}
			}, code: lessee.CodeLesseeConflict},
		{name: "ErrNoActiveLessee", row: removeRow(vin1, "", "2026-01-01"), code: lessee.CodeNoActiveLessee},
		{name: "ErrNoActiveLesseeEndedOtherDay", row: removeRow(vin4, person1, "2026-02-01"),
			setup: func(st *lessee.State) { st.Vehicles[vin4].Periods[0].End = "2026-01-01" },
			code:  lessee.CodeNoActiveLessee},
		{name: "ErrLesseeMismatch", row: removeRow(vin4, person2, "2026-01-01"), code: lessee.CodeLesseeMismatch, msg: "lessee_id"},
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
			if tt.submitter != "" {
				job.Submitter = tt.submitter
			}
			rs := rows(t, job, tt.row)
			d := Decide(Config{}, job, fx.state, rs)
			out := d.Outcomes
			checkShape(t, rs, out)
			checkWrites(t, d, fx.state)
			o := out[0]
			if o.Status != tt.status || o.Code != tt.code || !strings.Contains(o.Message, tt.msg) {
				t.Fatalf("outcome %s %s %q; want %s %s with %q", o.Status, o.Code, o.Message, tt.status, tt.code, tt.msg)
			}
			for _, leak := range []string{person1, person2, orgC} {
				if strings.Contains(o.Message, leak) && !strings.Contains(tt.row[lessee.ColOnBehalfOf], leak) {
					t.Errorf("message %q reveals %s", o.Message, leak)
				}
			}
		})
	}
}

func TestDecideMutations(t *testing.T) {
	t.Parallel()
	t.Run("OKAddOpens", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), with(addRow(vin1, person1, "2026-01-01"), lessee.ColLesseeName, "Nordmann"))
		d := Decide(Config{}, testJob(), fx.state, rs)
		o := d.Outcomes[0]
		want := lessee.Period{ID: "job1-0", LesseeID: person1, LesseeName: "Nordmann", Start: "2026-01-01"}
		if o.Operation != lessee.OpAdd || o.Before != nil || *o.After != want {
			t.Fatalf("outcome %+v", o)
		}
		if wantW := (lessee.Writes{Opened: []lessee.PeriodWrite{{VIN: vin1, Period: want, Line: o.Line}}}); !reflect.DeepEqual(d.Writes, wantW) {
			t.Fatalf("writes %+v, want %+v", d.Writes, wantW)
		}
		if o.OnBehalfOf != orgS || o.VIN != vin1 {
			t.Fatalf("OnBehalfOf, VIN = %s, %s", o.OnBehalfOf, o.VIN)
		}
		if got := fx.state.Vehicles[vin1].Periods; !reflect.DeepEqual(got, []lessee.Period{want}) {
			t.Fatalf("state periods %+v", got)
		}
	})
	t.Run("OKRemoveCloses", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), removeRow(vin4, "", "2026-02-01"))
		d := Decide(Config{}, testJob(), fx.state, rs)
		o := d.Outcomes[0]
		before := lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01"}
		after := before
		after.End = "2026-02-01"
		if *o.Before != before || *o.After != after || o.Operation != lessee.OpRemove {
			t.Fatalf("outcome %+v", o)
		}
		if wantW := (lessee.Writes{Closed: []lessee.PeriodWrite{{VIN: vin4, Period: after, Line: o.Line}}}); !reflect.DeepEqual(d.Writes, wantW) {
			t.Fatalf("writes %+v, want %+v", d.Writes, wantW)
		}
		if got := fx.state.Vehicles[vin4].Periods; !reflect.DeepEqual(got, []lessee.Period{after}) {
			t.Fatalf("state periods %+v", got)
		}
		// The outcome holds copies: later changes to the state leave it alone.
		fx.state.Vehicles[vin4].Periods[0].End = "2030-01-01"
		if o.After.End != "2026-02-01" || o.Before.End != "" {
			t.Fatalf("outcome aliases the state")
		}
	})
	t.Run("OKThirdPartyOnBehalfOf", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		job := testJob()
		job.Submitter = orgT
		rs := rows(t, job, with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF))
		if o := Decide(Config{}, job, fx.state, rs).Outcomes[0]; o.Status != lessee.StatusApplied || o.OnBehalfOf != orgF {
			t.Fatalf("outcome %+v", o)
		}
	})
}

func TestDecideFileOrder(t *testing.T) {
	t.Parallel()
	t.Run("OKRemoveThenAdd", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), removeRow(vin4, person1, "2026-01-01"), addRow(vin4, person2, "2026-01-01"))
		d := Decide(Config{}, testJob(), fx.state, rs)
		out := d.Outcomes
		checkShape(t, rs, out)
		checkWrites(t, d, fx.state)
		if out[0].Status != lessee.StatusApplied || out[1].Status != lessee.StatusApplied {
			t.Fatalf("outcomes %+v", out)
		}
		want := []lessee.Period{
			{ID: "p4", LesseeID: person1, Start: "2025-06-01", End: "2026-01-01"},
			{ID: "job1-1", LesseeID: person2, Start: "2026-01-01"},
		}
		if got := fx.state.Vehicles[vin4].Periods; !reflect.DeepEqual(got, want) {
			t.Fatalf("periods %+v", got)
		}
	})
	t.Run("ErrAddThenRemoveOrderMatters", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), addRow(vin4, person2, "2026-01-01"), removeRow(vin4, person1, "2026-01-01"))
		out := Decide(Config{}, testJob(), fx.state, rs).Outcomes
		if out[0].Code != lessee.CodeLesseeConflict || out[1].Status != lessee.StatusApplied {
			t.Fatalf("outcomes %+v", out)
		}
	})
	t.Run("OKAddTwiceSame", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), addRow(vin1, person1, "2026-01-01"), addRow(vin1, person1, "2026-01-01"))
		d := Decide(Config{}, testJob(), fx.state, rs)
		out := d.Outcomes
		checkShape(t, rs, out)
		checkWrites(t, d, fx.state)
		if out[0].Status != lessee.StatusApplied || out[1].Status != lessee.StatusUnchanged {
			t.Fatalf("outcomes %+v", out)
		}
	})
	t.Run("ErrAddTwiceOtherLessee", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), addRow(vin1, person1, "2026-01-01"), addRow(vin1, person2, "2026-02-01"))
		out := Decide(Config{}, testJob(), fx.state, rs).Outcomes
		if out[0].Status != lessee.StatusApplied || out[1].Code != lessee.CodeLesseeConflict {
			t.Fatalf("outcomes %+v", out)
		}
		if n := len(fx.state.Vehicles[vin1].Periods); n != 1 {
			t.Fatalf("%d periods", n)
		}
	})
	t.Run("OKRejectedRowInBetween", func(t *testing.T) {
		t.Parallel()
		fx := newFixture()
		rs := rows(t, testJob(), addRow(vin1, person1, "2026-01-01"), addRow(vin1, "bad", "2026-01-01"), removeRow(vin1, person1, "2026-02-01"))
		d := Decide(Config{}, testJob(), fx.state, rs)
		out := d.Outcomes
		checkShape(t, rs, out)
		checkWrites(t, d, fx.state)
		if out[0].Status != lessee.StatusApplied || out[1].Code != lessee.CodeInvalidLesseeID || out[2].Status != lessee.StatusApplied {
			t.Fatalf("outcomes %+v", out)
		}
	})
}

// TestDecideRerun runs a file, then the same file on the resulting state: every
// row that applied is unchanged the second time and nothing changes.
func TestDecideRerun(t *testing.T) {
	t.Parallel()
	files := map[string][]cells{
		"RemoveThenAdd": {removeRow(vin4, person1, "2026-01-01"), addRow(vin4, person2, "2026-01-01")},
		"RemoveWithoutLesseeThenAdd": {removeRow(vin4, "", "2026-01-01"), with(addRow(vin4, dnumber, "2026-01-01"),
			lessee.ColEndDate, "2026-12-31")},
		"AddWithEnd":            {with(addRow(vin1, person1, "2026-01-01"), lessee.ColEndDate, "2026-06-30")},
		"AddThenRemove":         {addRow(vin1, orgC, "2025-01-01"), removeRow(vin1, orgC, "2025-12-31")},
		"RemoveDefaultDate":     {removeRow(vin4, "", "")},
		"MixedWithRejections":   {addRow(vin1, person1, "2026-01-01"), addRow(vin3, person1, "2026-01-01"), removeRow(vin1, "", "2026-02-01")},
		"RemoveAddRemoveAdd":    {removeRow(vin4, person1, "2025-07-01"), addRow(vin4, person2, "2025-07-01"), removeRow(vin4, person2, "2025-09-01"), addRow(vin4, person1, "2025-09-01")},
		"ThirdPartyAddOnBehalf": {with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF)},
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture()
			job := testJob()
			if name == "ThirdPartyAddOnBehalf" {
				job.Submitter = orgT
			}
			rs := rows(t, job, file...)
			d := Decide(Config{}, job, fx.state, rs)
			first := d.Outcomes
			checkShape(t, rs, first)
			checkWrites(t, d, fx.state)
			applied := 0
			for _, o := range first {
				if o.Status == lessee.StatusApplied {
					applied++
				}
			}
			if applied == 0 {
				t.Fatalf("nothing applied the first time: %+v", first)
			}
			snapshot := clonePeriods(fx.state)
			job.ID = "job2"
			second := Decide(Config{}, job, fx.state, rs).Outcomes
			for i, o := range second {
				want := first[i].Status
				if want == lessee.StatusApplied {
					want = lessee.StatusUnchanged
				}
				if o.Status != want || o.Code != first[i].Code {
					t.Errorf("row %d second run: %s %s %q; first run %s %s", i, o.Status, o.Code, o.Message, first[i].Status, first[i].Code)
				}
			}
			if !reflect.DeepEqual(snapshot, clonePeriods(fx.state)) {
				t.Errorf("second run changed the state")
			}
		})
	}
}

func clonePeriods(st *lessee.State) map[string][]lessee.Period {
	out := map[string][]lessee.Period{}
	for vin, v := range st.Vehicles {
		out[vin] = append([]lessee.Period(nil), v.Periods...)
	}
	return out
}

// TestDecideTenantIsolation tries every way a submitter might reach a vehicle
// it may not change; none may apply or touch the state.
func TestDecideTenantIsolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		submitter string
		row       cells
		setup     func(st *lessee.State)
		code      lessee.Code
	}{
		{"ErrCompetitorVehicleDirect", orgS, removeRow(vin3, "", "2026-01-01"), nil, lessee.CodeNotOwner},
		{"ErrCompetitorVehicleByReg", orgS, cells{lessee.ColOperation: "remove", lessee.ColRegistrationNumber: "EF12345"}, nil, lessee.CodeNotOwner},
		{"ErrCompetitorOnBehalfOf", orgS, with(removeRow(vin3, "", "2026-01-01"), lessee.ColOnBehalfOf, orgC), nil, lessee.CodeTermsNotAccepted},
		{"ErrCompetitorOnBehalfOfWithThirdPartyTerms", orgS, with(removeRow(vin3, "", "2026-01-01"), lessee.ColOnBehalfOf, orgC),
			func(st *lessee.State) {
				st.Enterprises[orgS].Terms = append(st.Enterprises[orgS].Terms, lessee.Acceptance{Agreement: lessee.AgreementThirdParty, AcceptedAt: now})
			}, lessee.CodeNoDelegation},
		{"ErrDelegateOtherOwnersVehicle", orgT, with(removeRow(vin3, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF), nil, lessee.CodeNotOwner},
		{"ErrDelegatedToSomeoneElse", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) {
				k := [2]string{orgF, orgT}
				st.Delegations[[2]string{orgF, orgC}] = st.Delegations[k]
				delete(st.Delegations, k)
			}, lessee.CodeNoDelegation},
		{"ErrDelegationRevoked", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) {
				at := now.Add(-time.Second)
				st.Delegations[[2]string{orgF, orgT}][0].RevokedAt = &at
			}, lessee.CodeDelegationExpired},
		{"ErrDelegationExpired", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) { st.Delegations[[2]string{orgF, orgT}][0].ValidTo = "2025-06-30" }, lessee.CodeDelegationExpired},
		{"ErrDelegationNotYetValid", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) { st.Delegations[[2]string{orgF, orgT}][0].ValidFrom = "2026-02-01" }, lessee.CodeDelegationExpired},
		{"ErrDelegateWithoutThirdPartyTerms", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) { st.Enterprises[orgT].Terms = nil }, lessee.CodeTermsNotAccepted},
		{"ErrFleetOwnerLostRole", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) { st.Enterprises[orgF].FleetOwner = false }, lessee.CodeNotFleetOwner},
		{"ErrFleetOwnerSoldVehicle", orgT, with(removeRow(vin2, "", "2026-01-01"), lessee.ColOnBehalfOf, orgF),
			func(st *lessee.State) { st.Vehicles[vin2].Owner = orgC }, lessee.CodeNotOwner},
		{"ErrDelegateWithoutOnBehalfOf", orgT, removeRow(vin2, "", "2026-01-01"), nil, lessee.CodeTermsNotAccepted},
		{"ErrDelegateActingForItselfAsFleetOwner", orgT, removeRow(vin2, "", "2026-01-01"),
			func(st *lessee.State) {
				st.Enterprises[orgT].FleetOwner = true
				st.Enterprises[orgT].Terms = append(st.Enterprises[orgT].Terms, lessee.Acceptance{Agreement: lessee.AgreementLesseeAPI, AcceptedAt: now})
			}, lessee.CodeNotOwner},
		{"ErrMismatchDoesNotReachOtherVehicle", orgS, with(removeRow(vin1, "", "2026-01-01"), lessee.ColRegistrationNumber, "EF12345"), nil, lessee.CodeRegVINMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture()
			// Give vin2 a lessee so that a wrongly allowed remove would apply.
			fx.state.Vehicles[vin2].Periods = []lessee.Period{{ID: "p2", LesseeID: person2, Start: "2025-01-01"}}
			if tt.setup != nil {
				tt.setup(fx.state)
			}
			before := clonePeriods(fx.state)
			job := testJob()
			job.Submitter = tt.submitter
			rs := rows(t, job, tt.row)
			o := Decide(Config{}, job, fx.state, rs).Outcomes[0]
			if o.Status != lessee.StatusRejected || o.Code != tt.code {
				t.Fatalf("outcome %s %s %q; want rejected %s", o.Status, o.Code, o.Message, tt.code)
			}
			if !reflect.DeepEqual(before, clonePeriods(fx.state)) {
				t.Fatalf("state changed")
			}
			if strings.Contains(o.Message, orgC) && !strings.Contains(tt.row[lessee.ColOnBehalfOf], orgC) {
				t.Errorf("message %q reveals the owner", o.Message)
			}
		})
	}
}

func TestChangeID(t *testing.T) {
	t.Parallel()
	if got := lessee.ChangeID("job1", 7); got != "job1-7" {
		t.Fatalf("ChangeID = %q", got)
	}
	file := []cells{removeRow(vin4, person1, "2026-01-01"), addRow(vin4, person2, "2026-01-01"), addRow(vin1, dnumber, "2026-01-01")}
	run := func() []lessee.Outcome {
		return Decide(Config{}, testJob(), newFixture().state, rows(t, testJob(), file...)).Outcomes
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ:\n%+v\n%+v", a, b)
	}
	seen := map[string]bool{}
	for _, o := range a {
		if o.ChangeID == "" || seen[o.ChangeID] {
			t.Fatalf("change id %q missing or repeated", o.ChangeID)
		}
		seen[o.ChangeID] = true
	}
}

func TestDecideNilState(t *testing.T) {
	t.Parallel()
	rs := rows(t, testJob(), addRow(vin1, person1, "2026-01-01"))
	out := Decide(Config{}, testJob(), nil, rs).Outcomes
	if len(out) != 1 || out[0].Code != lessee.CodeTermsNotAccepted {
		t.Fatalf("outcomes %+v", out)
	}
}

func TestKeysFor(t *testing.T) {
	t.Parallel()
	job := testJob()
	rs := rows(t, job,
		with(addRow(vin2, person1, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
		with(addRow(vin1, person1, "2026-01-01"), lessee.ColRegistrationNumber, "ab 12345"),
		cells{lessee.ColOperation: "remove", lessee.ColRegistrationNumber: "GH12345"},
		with(addRow(vin2, person2, "2026-01-01"), lessee.ColOnBehalfOf, orgF),
		with(addRow(vin3, "bad", "2026-01-01"), lessee.ColOnBehalfOf, orgC), // rejected: left out
	)
	want := lessee.Keys{
		VINs:       []string{vin1, vin2},
		RegNumbers: []string{"AB12345", "GH12345"},
		OrgNrs:     []string{orgS, orgF},
		// The earliest date of each vehicle's rows; the remove ends on the
		// processing date.
		Since: map[string]lessee.Date{
			vin1: "2026-01-01", vin2: "2026-01-01", "AB12345": "2026-01-01", "GH12345": job.ProcessingDate,
		},
	}
	if got := KeysFor(job, rs); !reflect.DeepEqual(got, want) {
		t.Fatalf("KeysFor = %+v\nwant      %+v", got, want)
	}
}

// TestDecideWrites: the writes are each touched period in its final state
// after every row of the chunk, in the order first touched, so storage
// persists them without folding rows itself.
func TestDecideWrites(t *testing.T) {
	t.Parallel()
	t.Run("OKOpenedThenClosedIsOneInsert", func(t *testing.T) {
		t.Parallel()
		rs := rows(t, testJob(), addRow(vin1, person1, "2026-01-01"), removeRow(vin1, person1, "2026-02-01"))
		d := Decide(Config{}, testJob(), newFixture().state, rs)
		want := lessee.Writes{Opened: []lessee.PeriodWrite{{VIN: vin1, Line: rs[1].Line,
			Period: lessee.Period{ID: "job1-0", LesseeID: person1, Start: "2026-01-01", End: "2026-02-01"}}}}
		if !reflect.DeepEqual(d.Writes, want) {
			t.Fatalf("writes %+v, want %+v", d.Writes, want)
		}
	})
	t.Run("OKRemoveThenAddIsACloseAndAnInsert", func(t *testing.T) {
		t.Parallel()
		rs := rows(t, testJob(), removeRow(vin4, person1, "2026-01-01"), addRow(vin4, person2, "2026-01-01"))
		d := Decide(Config{}, testJob(), newFixture().state, rs)
		want := lessee.Writes{
			Closed: []lessee.PeriodWrite{{VIN: vin4, Line: rs[0].Line,
				Period: lessee.Period{ID: "p4", LesseeID: person1, Start: "2025-06-01", End: "2026-01-01"}}},
			Opened: []lessee.PeriodWrite{{VIN: vin4, Line: rs[1].Line,
				Period: lessee.Period{ID: "job1-1", LesseeID: person2, Start: "2026-01-01"}}},
		}
		if !reflect.DeepEqual(d.Writes, want) {
			t.Fatalf("writes %+v, want %+v", d.Writes, want)
		}
	})
	t.Run("OKNothingAppliedNothingWritten", func(t *testing.T) {
		t.Parallel()
		rs := rows(t, testJob(), addRow(vin3, person1, "2026-01-01"), removeRow(vin1, "", "2026-01-01"))
		d := Decide(Config{}, testJob(), newFixture().state, rs)
		if len(d.Writes.Opened)+len(d.Writes.Closed) != 0 {
			t.Fatalf("writes %+v for rejected rows", d.Writes)
		}
	})
}

func TestCheckSubmitter(t *testing.T) {
	t.Parallel()
	acc := func(a lessee.Agreement, at time.Time) lessee.Acceptance {
		return lessee.Acceptance{OrgNr: orgS, Agreement: a, Version: "1", AcceptedAt: at}
	}
	for _, tc := range []struct {
		name  string
		ent   *lessee.Enterprise
		allow bool
	}{
		{"OKLesseeAPI", &lessee.Enterprise{OrgNr: orgS, Terms: []lessee.Acceptance{acc(lessee.AgreementLesseeAPI, now.Add(-time.Hour))}}, true},
		{"OKThirdPartyOnly", &lessee.Enterprise{OrgNr: orgS, Terms: []lessee.Acceptance{acc(lessee.AgreementThirdParty, now)}}, true},
		{"ErrUnknown", nil, false},
		{"ErrNoTerms", &lessee.Enterprise{OrgNr: orgS, FleetOwner: true}, false},
		{"ErrAcceptedAfterNow", &lessee.Enterprise{OrgNr: orgS, Terms: []lessee.Acceptance{acc(lessee.AgreementLesseeAPI, now.Add(time.Second))}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := CheckSubmitter(tc.ent, orgS, now)
			if tc.allow {
				if r != nil {
					t.Fatalf("refused: %v", r)
				}
				return
			}
			if r == nil || r.Code != lessee.CodeTermsNotAccepted || r.Line != 0 || !strings.Contains(r.Message, orgS) {
				t.Fatalf("refusal = %+v, want TERMS_NOT_ACCEPTED for the file naming %s", r, orgS)
			}
			if got, ok := lessee.AsRefusal(r); !ok || got != r {
				t.Fatalf("AsRefusal does not find the refusal")
			}
		})
	}
}
