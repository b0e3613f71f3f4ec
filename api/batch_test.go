package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// groupWatch wraps the store: it counts the transactions and their sizes,
// holds each transaction back a while so that concurrent changes gather,
// and with failGroups fails every transaction of more than one change.
type groupWatch struct {
	Store
	hold       time.Duration
	failGroups bool
	panicVIN   string // deciding a change naming this VIN panics

	mu    sync.Mutex
	sizes []int
}

func (g *groupWatch) ApplyBatch(ctx context.Context, changes []lessee.APIChange) ([]lessee.APIResult, error) {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(changes))
	g.mu.Unlock()
	time.Sleep(g.hold)
	for i, c := range changes {
		if g.panicVIN != "" && slices.Contains(c.Keys.VINs, g.panicVIN) {
			changes[i].Decide = func(*lessee.State) lessee.Decision { panic("a bug in deciding") }
		}
	}
	if g.failGroups && len(changes) > 1 {
		return nil, errors.New("the database refused the group")
	}
	return g.Store.ApplyBatch(ctx, changes)
}

// TestConcurrentChangesShareTransactions: changes that come while a
// transaction runs go in the next one together, each decided and answered
// as its own; when a group's transaction fails, or deciding one change
// panics, each of its changes is applied alone, so no change is lost or
// applied twice and one change's failure is its own.
func TestConcurrentChangesShareTransactions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		failGroups bool
		panicVIN   string
	}{
		{"Groups", false, ""},
		{"FailedGroups", true, ""},
		{"PanicInAGroup", false, "WVWZZZ1KZAW000004"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, store := setup(t, Config{})
			watch := &groupWatch{Store: store, hold: 150 * time.Millisecond, failGroups: tc.failGroups, panicVIN: tc.panicVIN}
			srv := serveAPI(t, watch, Config{Batch: BatchConfig{InFlight: 1}})

			// Ten of the demo fleet's vehicles, one change each, all at once.
			const n = 10
			var wg sync.WaitGroup
			replies := make([]reply, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := fmt.Sprintf(`{"operation":"remove","vin":"WVWZZZ1KZAW%06d","end_date":"2026-02-01"}`, i+1)
					replies[i] = do(t, srv, http.MethodPost, "/api/v1/changes", owner, body, "Idempotency-Key", fmt.Sprint("k", i))
				}()
			}
			wg.Wait()
			for i, r := range replies {
				vin := fmt.Sprintf("WVWZZZ1KZAW%06d", i+1)
				audit, err := store.Audit(context.Background(), vin)
				if err != nil {
					t.Fatal(err)
				}
				if vin == tc.panicVIN {
					// Its own failure only, and nothing of it applied.
					if r.status != 500 || len(audit) != 0 {
						t.Errorf("%s, whose deciding panics: %d %s, %d audit entries", vin, r.status, r.body, len(audit))
					}
					continue
				}
				applied := answerField(t, r.body, "status") == "applied"
				if r.status/100 != 2 && r.status != 422 {
					t.Errorf("%s: %d %s", vin, r.status, r.body)
				}
				// Applied once, or rejected (no lessee to end) and not applied.
				if want := map[bool]int{true: 1, false: 0}[applied]; len(audit) != want {
					t.Errorf("%s: answer %s, %d audit entries", vin, r.body, len(audit))
				}
				if applied && audit[0].RequestID != r.header.Get("X-Request-Id") {
					t.Errorf("%s: audited under request %s, answered as %s", vin, audit[0].RequestID, r.header.Get("X-Request-Id"))
				}
				// The answer is kept under the change's own key.
				again := do(t, srv, http.MethodPost, "/api/v1/changes", owner,
					fmt.Sprintf(`{"operation":"remove","vin":"%s","end_date":"2026-02-01"}`, vin), "Idempotency-Key", fmt.Sprint("k", i))
				if string(again.body) != string(r.body) || again.header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("%s: repeat answered %s, first %s", vin, again.body, r.body)
				}
			}
			watch.mu.Lock()
			defer watch.mu.Unlock()
			grouped := 0
			for _, s := range watch.sizes {
				grouped = max(grouped, s)
			}
			if grouped < 2 {
				t.Errorf("transactions of %v changes: concurrent changes never shared one", watch.sizes)
			}
		})
	}
}

// serveAPI serves the API over store.
func serveAPI(t *testing.T, store Store, cfg Config) *httptest.Server {
	t.Helper()
	s := New(store, tokens{}, cfg, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
