package validate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// TestAuthorizationAdversarial is the authorization table of the threat
// model: every way a submitter might act without the right to, each
// rejected with its code and leaving the registry state as it was. Two OK
// rows show the fixture grants what it should, so the rejections are not
// an artefact of a broken fixture.
func TestAuthorizationAdversarial(t *testing.T) {
	t.Parallel()
	// acc is an acceptance of agreement a by org at time at.
	acc := func(org string, a lessee.Agreement, at time.Time) lessee.Acceptance {
		return lessee.Acceptance{OrgNr: org, Agreement: a, Version: "1", AcceptedAt: at}
	}
	delegation := func(st *lessee.State) *lessee.Delegation { return &st.Delegations[[2]string{orgF, orgT}][0] }
	onBehalf := func(c cells, org string) cells { return with(c, lessee.ColOnBehalfOf, org) }
	sold := func(vin, to string, since lessee.Date) func(*lessee.State) {
		return func(st *lessee.State) { st.Vehicles[vin].Owner, st.Vehicles[vin].OwnerSince = to, since }
	}
	tests := []struct {
		name      string
		submitter string
		row       cells
		setup     func(st *lessee.State)
		status    lessee.Status // default rejected
		code      lessee.Code
	}{
		// The fixture works: a delegate and an owner acting within their rights.
		{name: "OKDelegateWithinDelegation", submitter: orgT, row: onBehalf(addRow(vin2, person1, "2026-01-01"), orgF),
			setup: func(st *lessee.State) { st.Vehicles[vin2].Periods = nil }, status: lessee.StatusApplied},
		{name: "OKOwnerOwnVehicle", submitter: orgS, row: addRow(vin1, person1, "2026-01-01"), status: lessee.StatusApplied},

		// Delegation not valid on the effective date.
		{name: "ErrDelegationExpired", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { delegation(st).ValidTo = "2025-12-31" }, code: lessee.CodeDelegationExpired},
		{name: "ErrDelegationExpiredAdd", submitter: orgT, row: onBehalf(addRow(vin2, person1, "2026-02-01"), orgF),
			setup: func(st *lessee.State) { delegation(st).ValidTo = "2026-01-31"; st.Vehicles[vin2].Periods = nil },
			code:  lessee.CodeDelegationExpired},
		{name: "ErrDelegationNotYetValid", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { delegation(st).ValidFrom = "2026-01-02" }, code: lessee.CodeDelegationExpired},
		{name: "ErrDelegationRevoked", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { at := now.Add(-time.Hour); delegation(st).RevokedAt = &at }, code: lessee.CodeDelegationExpired},
		{name: "ErrDelegationRevokedBackdated", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2025-06-01"), orgF),
			// Revoked today, the effective date long before: a revocation in
			// the past ends the delegation for every date.
			setup: func(st *lessee.State) { at := now.Add(-time.Minute); delegation(st).RevokedAt = &at }, code: lessee.CodeDelegationExpired},
		{name: "ErrDelegationRevokedFromFutureDate", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-05-01"), orgF),
			setup: func(st *lessee.State) { at := now.Add(30 * 24 * time.Hour); delegation(st).RevokedAt = &at }, code: lessee.CodeDelegationExpired},
		{name: "ErrRevokedThenRedelegatedLater", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				at := now.Add(-48 * time.Hour)
				st.Delegations[[2]string{orgF, orgT}] = []lessee.Delegation{
					{FleetOwner: orgF, Delegate: orgT, ValidFrom: "2025-01-01", RevokedAt: &at},
					{FleetOwner: orgF, Delegate: orgT, ValidFrom: "2026-03-01"},
				}
			}, code: lessee.CodeDelegationExpired},

		// Delegation to someone else, or not to the submitter directly.
		{name: "ErrDelegatedToSomeoneElse", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				st.Delegations[[2]string{orgF, orgC}] = st.Delegations[[2]string{orgF, orgT}]
				delete(st.Delegations, [2]string{orgF, orgT})
			}, code: lessee.CodeNoDelegation},
		{name: "ErrDelegationReversed", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				st.Delegations[[2]string{orgT, orgF}] = []lessee.Delegation{{FleetOwner: orgT, Delegate: orgF, ValidFrom: "2025-01-01"}}
				delete(st.Delegations, [2]string{orgF, orgT})
			}, code: lessee.CodeNoDelegation},
		{name: "ErrNoTransitiveDelegation", submitter: orgT, row: onBehalf(removeRow(vin3, "", "2026-01-01"), orgC),
			// orgC delegated to orgF, and orgF to orgT: orgT may not act for orgC.
			setup: func(st *lessee.State) {
				st.Delegations[[2]string{orgC, orgF}] = []lessee.Delegation{{FleetOwner: orgC, Delegate: orgF, ValidFrom: "2025-01-01"}}
			}, code: lessee.CodeNoDelegation},
		{name: "ErrDelegateOtherOwnersVehicle", submitter: orgT, row: onBehalf(removeRow(vin3, "", "2026-01-01"), orgF),
			code: lessee.CodeNotOwner},

		// Delegate without the third-party agreement.
		{name: "ErrDelegateWithoutThirdPartyTerms", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { st.Enterprises[orgT].Terms = nil }, code: lessee.CodeTermsNotAccepted},
		{name: "ErrDelegateWithOnlyLesseeAPITerms", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				st.Enterprises[orgT].Terms = []lessee.Acceptance{acc(orgT, lessee.AgreementLesseeAPI, now.Add(-time.Hour))}
			}, code: lessee.CodeTermsNotAccepted},
		{name: "ErrDelegateTermsAcceptedAfterJobStart", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				st.Enterprises[orgT].Terms = []lessee.Acceptance{acc(orgT, lessee.AgreementThirdParty, now.Add(time.Hour))}
			}, code: lessee.CodeTermsNotAccepted},
		{name: "ErrDelegateWithoutOnBehalfOf", submitter: orgT, row: removeRow(vin2, "", "2026-01-01"), code: lessee.CodeTermsNotAccepted},

		// Fleet owner that lost the role or never accepted terms.
		{name: "ErrFleetOwnerLostRole", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { st.Enterprises[orgF].FleetOwner = false }, code: lessee.CodeNotFleetOwner},
		{name: "ErrSubmitterLostRole", submitter: orgS, row: removeRow(vin4, "", "2026-01-01"),
			setup: func(st *lessee.State) { st.Enterprises[orgS].FleetOwner = false }, code: lessee.CodeNotFleetOwner},
		{name: "ErrFleetOwnerNeverAcceptedTerms", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) { st.Enterprises[orgF].Terms = nil }, code: lessee.CodeTermsNotAccepted},
		{name: "ErrFleetOwnerAcceptedOnlyThirdPartyTerms", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: func(st *lessee.State) {
				st.Enterprises[orgF].Terms = []lessee.Acceptance{acc(orgF, lessee.AgreementThirdParty, now.Add(-time.Hour))}
			}, code: lessee.CodeTermsNotAccepted},
		{name: "ErrSubmitterNeverAcceptedTerms", submitter: orgS, row: removeRow(vin4, "", "2026-01-01"),
			setup: func(st *lessee.State) { st.Enterprises[orgS].Terms = nil }, code: lessee.CodeTermsNotAccepted},
		{name: "ErrSubmitterTermsAcceptedAfterJobStart", submitter: orgS, row: removeRow(vin4, "", "2026-01-01"),
			setup: func(st *lessee.State) {
				st.Enterprises[orgS].Terms = []lessee.Acceptance{acc(orgS, lessee.AgreementLesseeAPI, now.Add(time.Second))}
			}, code: lessee.CodeTermsNotAccepted},
		{name: "ErrSubmitterUnknown", submitter: orgX, row: removeRow(vin4, "", "2026-01-01"), code: lessee.CodeTermsNotAccepted},

		// Vehicle sold to another owner before the effective date.
		{name: "ErrVehicleSoldBeforeEffectiveDate", submitter: orgS, row: removeRow(vin4, "", "2026-01-01"),
			setup: sold(vin4, orgC, "2025-12-01"), code: lessee.CodeNotOwner},
		{name: "ErrVehicleSoldBeforeEffectiveDateDelegate", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgF),
			setup: sold(vin2, orgC, "2025-12-01"), code: lessee.CodeNotOwner},
		{name: "ErrFormerOwnerBeforeSale", submitter: orgS, row: addRow(vin1, person1, "2026-01-01"),
			// The registry knows only the current owner: the former owner
			// may not change anything, not even dates before the sale.
			setup: sold(vin1, orgC, "2026-02-01"), code: lessee.CodeNotOwner},
		{name: "ErrNewOwnerBeforePurchase", submitter: orgC, row: addRow(vin1, person1, "2026-01-01"),
			setup: sold(vin1, orgC, "2026-02-01"), code: lessee.CodeNotOwner},

		// on_behalf_of pointing at the submitter's competitor.
		{name: "ErrOnBehalfOfCompetitor", submitter: orgS, row: onBehalf(removeRow(vin3, "", "2026-01-01"), orgC),
			code: lessee.CodeTermsNotAccepted},
		{name: "ErrOnBehalfOfCompetitorByRegNumber", submitter: orgS,
			row:  onBehalf(cells{lessee.ColOperation: "remove", lessee.ColRegistrationNumber: "EF12345", lessee.ColEndDate: "2026-01-01"}, orgC),
			code: lessee.CodeTermsNotAccepted},
		{name: "ErrOnBehalfOfCompetitorWithThirdPartyTerms", submitter: orgS, row: onBehalf(removeRow(vin3, "", "2026-01-01"), orgC),
			setup: func(st *lessee.State) {
				st.Enterprises[orgS].Terms = append(st.Enterprises[orgS].Terms, acc(orgS, lessee.AgreementThirdParty, now.Add(-time.Hour)))
			}, code: lessee.CodeNoDelegation},
		{name: "ErrOnBehalfOfCompetitorOnOwnVehicle", submitter: orgS, row: onBehalf(removeRow(vin4, "", "2026-01-01"), orgC),
			// Even with a delegation from the competitor, on_behalf_of does
			// not reach vehicles the competitor does not own.
			setup: func(st *lessee.State) {
				st.Enterprises[orgS].Terms = append(st.Enterprises[orgS].Terms, acc(orgS, lessee.AgreementThirdParty, now.Add(-time.Hour)))
				st.Delegations[[2]string{orgC, orgS}] = []lessee.Delegation{{FleetOwner: orgC, Delegate: orgS, ValidFrom: "2025-01-01"}}
			}, code: lessee.CodeNotOwner},
		{name: "ErrOnBehalfOfUnknownOrg", submitter: orgT, row: onBehalf(removeRow(vin2, "", "2026-01-01"), orgX),
			code: lessee.CodeNotFleetOwner},
		{name: "ErrOwnVehicleNamedByCompetitorsRegNumber", submitter: orgS, row: with(removeRow(vin4, "", "2026-01-01"), lessee.ColRegistrationNumber, "EF12345"),
			code: lessee.CodeRegVINMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.status == "" {
				tt.status = lessee.StatusRejected
			}
			fx := newFixture()
			// vin2 has a lessee, so that a wrongly allowed remove would apply.
			fx.state.Vehicles[vin2].Periods = []lessee.Period{{ID: "p2", LesseeID: person2, Start: "2025-01-01"}}
			if tt.setup != nil {
				tt.setup(fx.state)
			}
			before := clonePeriods(fx.state)
			job := testJob()
			job.Submitter = tt.submitter
			rs := rows(t, job, tt.row)
			if rs[0].Problem != nil {
				t.Fatalf("the row itself is invalid: %+v", rs[0].Problem)
			}
			d := Decide(Config{}, job, fx.state, rs)
			out := d.Outcomes
			checkShape(t, rs, out)
			checkWrites(t, d, fx.state)
			o := out[0]
			if o.Status != tt.status || o.Code != tt.code {
				t.Fatalf("outcome %s %s %q; want %s %s", o.Status, o.Code, o.Message, tt.status, tt.code)
			}
			if o.Status == lessee.StatusRejected && !reflect.DeepEqual(before, clonePeriods(fx.state)) {
				t.Fatal("a rejected row changed the registry state")
			}
			// A message names only the submitter and what it wrote: never
			// another lessee, nor an owner the submitter did not name.
			for _, leak := range []string{person1, person2, orgC, orgF} {
				if strings.Contains(o.Message, leak) && leak != tt.submitter && !strings.Contains(tt.row[lessee.ColOnBehalfOf], leak) {
					t.Errorf("message %q reveals %s", o.Message, leak)
				}
			}
		})
	}
}
