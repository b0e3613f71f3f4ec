package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestIdempotencyWindow: an answer is kept 24 hours; after that the key
// names a new request, and the sweep removes what is left.
func TestIdempotencyWindow(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		c := newClock(s, time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
		importRegistry(t, s)
		rows := []row{{lessee.OpRemove, vin1, "", "2024-05-01"}}
		call := func(rid, key, hash string) (sqlstore.APIAnswer, bool, error) {
			return s.ApplyOne(ctx, sqlstore.APICall{RequestID: rid, Submitter: fleetOwner, IdempotencyKey: key, RequestHash: hash},
				keysFor(rows), decider(sqlstore.APICall{RequestID: rid}.JobID(), 0, rows, nil), apiAnswer)
		}
		for _, k := range []string{"a", "b"} {
			if _, _, err := call("r-"+k, k, "h"); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(23 * time.Hour)
		if _, replayed, err := call("r-a2", "a", "h"); err != nil || !replayed {
			t.Errorf("after 23 hours: replayed %v, %v", replayed, err)
		}
		c.t = c.t.Add(2 * time.Hour)
		// A new request under the old key: decided again, not refused.
		if ans, replayed, err := call("r-a3", "a", "other"); err != nil || replayed || strings.Contains(string(ans.Body), "applied") {
			t.Errorf("after 25 hours: %s, replayed %v, %v", ans.Body, replayed, err)
		}
		if n, err := s.ForgetIdempotencyKeys(ctx); err != nil || n != 1 {
			t.Errorf("the sweep forgot %d keys (%v), want 1 (b)", n, err)
		}
	})
}

// TestApplyOneRollsBackWrites: when a write of a single change fails (on
// PostgreSQL they go to the server together, just before the commit), none
// of them stays: not the opened period, not the audit entry, not the
// idempotency key's answer; the key is free for the retry.
func TestApplyOneRollsBackWrites(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		rows := []row{{lessee.OpAdd, vin2, lesseeOrg, "2024-05-01"}}
		call := sqlstore.APICall{RequestID: "bad", Submitter: fleetOwner, IdempotencyKey: "k", RequestHash: "h"}
		_, _, err := s.ApplyOne(ctx, call, keysFor(rows), func(st *lessee.State) lessee.Decision {
			d := decider(call.JobID(), 0, rows, nil)(st)
			// vin1's period exists, but the close names vin3.
			d.Writes.Closed = append(d.Writes.Closed, lessee.PeriodWrite{VIN: vin3,
				Period: lessee.Period{ID: "import-" + vin1 + "-2023-01-01", End: "2024-05-01"}, Line: 2})
			return d
		}, apiAnswer)
		if !errors.Is(err, sqlstore.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if got := vehicle(t, s, vin2).Periods; len(got) != 0 {
			t.Errorf("vehicle 2 periods = %+v", got)
		}
		if got := vehicle(t, s, vin1).Periods; len(got) != 1 || !got[0].End.IsZero() {
			t.Errorf("vehicle 1 periods = %+v", got)
		}
		if got := audit(t, s, vin2); len(got) != 0 {
			t.Errorf("audit = %+v", got)
		}
		call.RequestID = "retry"
		ans, replayed, err := s.ApplyOne(ctx, call, keysFor(rows), decider(call.JobID(), 0, rows, nil), apiAnswer)
		if err != nil || replayed || !strings.Contains(string(ans.Body), `"applied"`) {
			t.Fatalf("retry under the key: %s, replayed %v, %v", ans.Body, replayed, err)
		}
	})
}

// TestApplyBatch: changes of the single-change API share a transaction,
// each decided alone: a change naming a vehicle an earlier one of the
// batch names (here by its registration number) or an idempotency key
// already in the batch comes Again, with its key given back; repeats and
// reused keys are answered from what is kept; a failing change rolls the
// whole batch back.
func TestApplyBatch(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		change := func(rid, key, hash string, keys lessee.Keys, rows []row) lessee.APIChange {
			call := sqlstore.APICall{RequestID: rid, Submitter: fleetOwner, IdempotencyKey: key, RequestHash: hash}
			return lessee.APIChange{Call: call, Keys: keys, Decide: decider(call.JobID(), 0, rows, nil), Answer: apiAnswer}
		}
		removeVIN1 := []row{{lessee.OpRemove, vin1, "", "2024-05-01"}}
		addVIN2 := []row{{lessee.OpAdd, vin2, person, "2024-06-01"}}
		addVIN1 := []row{{lessee.OpAdd, vin1, person, "2024-06-01"}}
		byReg := lessee.Keys{OrgNrs: []string{fleetOwner}, RegNumbers: []string{"EL12345"}} // vin1's
		kept, _, err := s.ApplyOne(ctx, sqlstore.APICall{RequestID: "old", Submitter: fleetOwner, IdempotencyKey: "kold", RequestHash: "h"},
			keysFor([]row{{lessee.OpRemove, vin3, "", "2024-05-01"}}), decider("api-old", 0, []row{{lessee.OpRemove, vin3, "", "2024-05-01"}}, nil), apiAnswer)
		if err != nil {
			t.Fatal(err)
		}

		res, err := s.ApplyBatch(ctx, []lessee.APIChange{
			change("r0", "ka", "h", keysFor(removeVIN1), removeVIN1),
			change("r1", "", "", keysFor(addVIN2), addVIN2),
			change("r2", "kc", "h", byReg, addVIN1), // vin1 again: after r0
			change("r3", "ka", "h", keysFor(removeVIN1), removeVIN1),
			change("r4", "kold", "h", keysFor(removeVIN1), removeVIN1),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			body            string
			again, replayed bool
		}{
			{`{"status":"applied","change_id":"api-r0-0"}`, false, false},
			{`{"status":"applied","change_id":"api-r1-0"}`, false, false},
			{"", true, false},
			{"", true, false},
			{string(kept.Body), false, true},
		}
		for i, w := range want {
			if r := res[i]; string(r.Answer.Body) != w.body || r.Again != w.again || r.Replayed != w.replayed || r.Err != nil {
				t.Errorf("change %d: %s again %v replayed %v err %v; want %s again %v replayed %v",
					i, r.Answer.Body, r.Again, r.Replayed, r.Err, w.body, w.again, w.replayed)
			}
		}
		for vin, rid := range map[string]string{vin1: "r0", vin2: "r1"} {
			audit, err := s.Audit(ctx, vin)
			if err != nil {
				t.Fatal(err)
			}
			if len(audit) != 1 || audit[0].RequestID != rid || audit[0].Source != "api" || audit[0].ChangeID != "api-"+rid+"-0" {
				t.Errorf("%s: audit %+v, want one entry of %s", vin, audit, rid)
			}
		}

		// Their turn: r2 is decided on r0's result and its key is its
		// own (given back, not kept empty); r3 repeats r0.
		res, err = s.ApplyBatch(ctx, []lessee.APIChange{
			change("r2", "kc", "h", byReg, addVIN1),
			change("r3", "ka", "h", keysFor(removeVIN1), removeVIN1),
			change("r5", "kold", "other", keysFor(addVIN2), addVIN2),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; string(r.Answer.Body) != `{"status":"applied","change_id":"api-r2-0"}` || r.Again || r.Replayed {
			t.Errorf("r2 in its turn: %s again %v replayed %v", r.Answer.Body, r.Again, r.Replayed)
		}
		if r := res[1]; string(r.Answer.Body) != `{"status":"applied","change_id":"api-r0-0"}` || !r.Replayed {
			t.Errorf("r3 in its turn: %s replayed %v, want r0's answer", r.Answer.Body, r.Replayed)
		}
		if r := res[2]; !errors.Is(r.Err, sqlstore.ErrIdempotencyKeyReused) {
			t.Errorf("another request under a kept key: %v", r.Err)
		}

		// One change failing rolls back the others of its batch.
		addVIN3 := []row{{lessee.OpAdd, vin3, person, "2025-01-01"}}
		broken := change("r7", "kb", "h", keysFor(addVIN3), addVIN3)
		broken.Decide = func(*lessee.State) lessee.Decision { return lessee.Decision{} }
		removeVIN2 := []row{{lessee.OpRemove, vin2, "", "2024-07-01"}}
		if _, err := s.ApplyBatch(ctx, []lessee.APIChange{change("r6", "kr", "h", keysFor(removeVIN2), removeVIN2), broken}); err == nil {
			t.Fatal("a batch with a change that decided nothing went through")
		}
		if audit, _ := s.Audit(ctx, vin2); len(audit) != 1 {
			t.Errorf("%d audit entries of vin2 after the failed batch, want 1", len(audit))
		}
		res, err = s.ApplyBatch(ctx, []lessee.APIChange{change("r6", "kr", "h", keysFor(removeVIN2), removeVIN2)})
		if err != nil || res[0].Replayed || string(res[0].Answer.Body) != `{"status":"applied","change_id":"api-r6-0"}` {
			t.Errorf("r6 alone after its batch failed: %+v, %v", res, err)
		}
	})
}
