package sqlstore_test

import (
	"context"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestAuthorityAsFreshAsTheTables: the authority a change is decided on is
// kept between calls, yet every change to the authority tables, made by
// the code or behind its back (an UPDATE, INSERT or DELETE in SQL), is seen
// by the next call, and a call never sees authority from two generations.
func TestAuthorityAsFreshAsTheTables(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		n := 0
		// authority applies a no-op call (an add that is already on file is
		// unchanged) and returns the state it was decided on.
		authority := func() *lessee.State {
			t.Helper()
			n++
			rows := []row{{lessee.OpAdd, vin1, person, "2023-01-01"}}
			keys := keysFor(rows)
			keys.OrgNrs = []string{fleetOwner, thirdParty, lesseeOrg}
			var seen *lessee.State
			call := sqlstore.APICall{RequestID: "r" + string(rune('a'+n)), Submitter: fleetOwner}
			if _, _, err := s.ApplyOne(ctx, call, keys, decider(call.JobID(), 0, rows, &seen), apiAnswer); err != nil {
				t.Fatal(err)
			}
			return seen
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if err := s.Exec(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		delegations := func(st *lessee.State) int { return len(st.Delegations[[2]string{fleetOwner, thirdParty}]) }

		for range 2 { // the second call is served from what the first read
			st := authority()
			if e := st.Enterprises[fleetOwner]; e == nil || !e.FleetOwner || len(e.Terms) == 0 {
				t.Fatalf("fleet owner %+v", e)
			}
			if st.Enterprises[lesseeOrg] == nil || delegations(st) != 2 {
				t.Fatalf("enterprises %v, %d delegations, want 2", st.Enterprises, delegations(st))
			}
		}
		exec(`UPDATE enterprises SET fleet_owner = ? WHERE orgnr = ?`, false, fleetOwner)
		if st := authority(); st.Enterprises[fleetOwner].FleetOwner {
			t.Error("a role taken away in SQL is still seen")
		}
		exec(`UPDATE delegations SET revoked_at = ? WHERE fleet_owner_orgnr = ? AND valid_from = ?`,
			"2024-02-01T00:00:00.000000000Z", fleetOwner, "2024-01-01")
		st := authority()
		for _, d := range st.Delegations[[2]string{fleetOwner, thirdParty}] {
			if d.ValidFrom == "2024-01-01" && d.RevokedAt == nil {
				t.Error("a delegation revoked in SQL is still seen as in force")
			}
		}
		exec(`DELETE FROM delegations WHERE fleet_owner_orgnr = ?`, fleetOwner)
		if st := authority(); delegations(st) != 0 {
			t.Errorf("%d delegations after they were deleted in SQL", delegations(st))
		}
		exec(`DELETE FROM terms_acceptances WHERE orgnr = ?`, fleetOwner)
		if st := authority(); len(st.Enterprises[fleetOwner].Terms) != 0 {
			t.Error("terms deleted in SQL are still seen")
		}
		exec(`INSERT INTO enterprises (orgnr, name, fleet_owner) VALUES (?, ?, ?)`, unknownOrg, "New AS", true)
		rows := []row{{lessee.OpAdd, vin1, person, "2023-01-01"}}
		keys := keysFor(rows)
		keys.OrgNrs = []string{unknownOrg}
		var seen *lessee.State
		call := sqlstore.APICall{RequestID: "new", Submitter: fleetOwner}
		if _, _, err := s.ApplyOne(ctx, call, keys, decider(call.JobID(), 0, rows, &seen), apiAnswer); err != nil {
			t.Fatal(err)
		}
		if seen.Enterprises[unknownOrg] == nil {
			t.Error("an enterprise inserted in SQL is not seen")
		}
	})
}
