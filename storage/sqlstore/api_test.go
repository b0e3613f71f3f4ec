package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// apiAnswer is a stand-in for the API's answer: the outcome's status.
func apiAnswer(o lessee.Outcome) (sqlstore.APIAnswer, error) {
	return sqlstore.APIAnswer{Status: 200, Body: []byte(`{"status":"` + string(o.Status) + `","change_id":"` + o.ChangeID + `"}`)}, nil
}

// TestApplyOne: one change through the chunk machinery, audited as an API
// call, the fleet's export marked; a repeat under its idempotency key gets
// the first answer and changes nothing, another request under it is
// refused; 16 concurrent calls with one key apply once.
func TestApplyOne(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		rows := []row{{lessee.OpRemove, vin1, "", "2024-05-01"}}
		call := func(rid, key, hash string) (sqlstore.APIAnswer, bool, error) {
			return s.ApplyOne(ctx, sqlstore.APICall{RequestID: rid, Submitter: fleetOwner, IdempotencyKey: key, RequestHash: hash},
				keysFor(rows), decider(sqlstore.APICall{RequestID: rid}.JobID(), 0, rows, nil), apiAnswer)
		}
		ans, replayed, err := call("r1", "k1", "h1")
		if err != nil || replayed || string(ans.Body) != `{"status":"applied","change_id":"api-r1-0"}` {
			t.Fatalf("first call: %s, replayed %v, %v", ans.Body, replayed, err)
		}
		audit, err := s.Audit(ctx, vin1)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Source != "api" || audit[0].RequestID != "r1" || audit[0].ChangeID != "api-r1-0" || audit[0].Submitter != fleetOwner {
			t.Fatalf("audit %+v", audit)
		}
		if r := fleetRow(t, s, fleetOwner); r.Version < 2 {
			t.Errorf("the fleet's export was not marked: version %d", r.Version)
		}

		again, replayed, err := call("r2", "k1", "h1")
		if err != nil || !replayed || string(again.Body) != string(ans.Body) || again.Status != ans.Status {
			t.Errorf("repeat: %s %d, replayed %v, %v", again.Body, again.Status, replayed, err)
		}
		if _, _, err := call("r3", "k1", "h2"); !errors.Is(err, sqlstore.ErrIdempotencyKeyReused) {
			t.Errorf("another request under the key: %v", err)
		}
		if audit, _ := s.Audit(ctx, vin1); len(audit) != 1 {
			t.Errorf("%d audit entries after the repeats, want 1", len(audit))
		}

		// Concurrent calls with one key: one applies, the others get its answer.
		addRows := []row{{lessee.OpAdd, vin1, person, "2024-06-01"}}
		var wg sync.WaitGroup
		answers := make([]string, 16)
		errs := make([]error, 16)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rid := fmt.Sprintf("c%d", i)
				a, _, err := s.ApplyOne(ctx, sqlstore.APICall{RequestID: rid, Submitter: fleetOwner, IdempotencyKey: "k2", RequestHash: "h"},
					keysFor(addRows), decider(sqlstore.APICall{RequestID: rid}.JobID(), 0, addRows, nil), apiAnswer)
				answers[i], errs[i] = string(a.Body), err
			}()
		}
		wg.Wait()
		for i := range answers {
			if errs[i] != nil || answers[i] != answers[0] {
				t.Errorf("concurrent call %d: %s, %v; want %s", i, answers[i], errs[i], answers[0])
			}
		}
		if audit, _ := s.Audit(ctx, vin1); len(audit) != 2 {
			t.Errorf("%d audit entries after 16 concurrent calls with one key, want 2", len(audit))
		}
		if n, err := s.ForgetIdempotencyKeys(ctx); err != nil || n != 0 {
			t.Errorf("forgot %d fresh keys (%v)", n, err)
		}
	})
}
