package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/storage/sqlstore"
)

// Registry fixtures of testdata/registry.
const (
	fleetOwner = "910000004"
	thirdParty = "910000012"
	lesseeOrg  = "910000020"
	unknownOrg = "910000039" // valid, but not an enterprise
	person     = "01019010046"
	synthetic  = "01419010029"       // month + 40: a synthetic test number
	vin1       = "WVWZZZ1JZXW000001" // EL12345, open period of person since 2023-01-01
	vin2       = "WVWZZZ1JZXW000002" // AB54321, no lessee
	vin3       = "WVWZZZ1JZXW000003" // CD12345, closed period of lesseeOrg
	vinMissing = "WVWZZZ1JZXW000009"
)

// clock is a test clock that advances one millisecond per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s *sqlstore.Store, start time.Time) *clock {
	c := &clock{t: start}
	s.Now = c.now
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// importRegistry loads testdata/registry.
func importRegistry(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	if _, err := s.Import(context.Background(), filepath.Join("testdata", "registry"), sqlstore.ImportOptions{}); err != nil {
		t.Fatalf("import registry: %v", err)
	}
}

// writeFiles writes name -> content into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// beginJob starts a job for the fleet owner.
func beginJob(t *testing.T, s *sqlstore.Store, id string) lessee.Job {
	t.Helper()
	j, err := s.BeginJob(context.Background(), lessee.Job{
		ID:        id,
		Bucket:    "lessee",
		Key:       "inbox/" + fleetOwner + "/" + id + ".csv",
		Version:   "v1",
		Submitter: fleetOwner,
		Name:      id + ".csv",
	})
	if err != nil {
		t.Fatalf("begin job: %v", err)
	}
	return j
}

// row is a change for the test decider.
type row struct {
	op     lessee.Operation
	vin    string
	lessee string
	date   lessee.Date
}

// keysFor names what rows need.
func keysFor(rows []row) lessee.Keys {
	k := lessee.Keys{OrgNrs: []string{fleetOwner}}
	for _, r := range rows {
		k.VINs = append(k.VINs, r.vin)
	}
	return k
}

// decider is a small stand-in for package validate: it opens and closes
// periods, reports unchanged re-adds and rejects what it cannot apply, and
// folds its changes into the final state of each period it touched, as
// validate.Decide does. seen, when not nil, receives the state it was given
// before any change.
func decider(jobID string, checkpoint int, rows []row, seen **lessee.State) func(*lessee.State) lessee.Decision {
	return func(st *lessee.State) lessee.Decision {
		if seen != nil {
			*seen = cloneState(st)
		}
		var out []lessee.Outcome
		var touched lessee.WriteSet
		for i, r := range rows {
			idx := checkpoint + i
			o := lessee.Outcome{
				Result: lessee.Result{
					Index: idx,
					Line:  idx + 2,
					Echo: lessee.Echo{
						Reference: fmt.Sprintf("ref-%d", idx),
						Operation: string(r.op),
						VIN:       r.vin,
						Lessee:    ident.Mask(r.lessee),
					},
				},
				VIN: r.vin,
			}
			reject := func(c lessee.Code) {
				o.Status, o.Code, o.Message = lessee.StatusRejected, c, strings.ToLower(string(c))
				out = append(out, o)
			}
			v := st.Vehicles[r.vin]
			if v == nil {
				reject(lessee.CodeVehicleNotFound)
				continue
			}
			o.Echo.RegistrationNumber = v.RegistrationNumber
			open := -1
			for j, p := range v.Periods {
				if p.End.IsZero() {
					open = j
				}
			}
			changeID := lessee.ChangeID(jobID, idx)
			switch r.op {
			case lessee.OpAdd:
				if open >= 0 {
					if p := v.Periods[open]; p.LesseeID == r.lessee && p.Start == r.date {
						o.Status = lessee.StatusUnchanged
						out = append(out, o)
					} else {
						reject(lessee.CodeLesseeConflict)
					}
					continue
				}
				p := lessee.Period{ID: changeID, LesseeID: r.lessee, LesseeName: "Name " + r.lessee[len(r.lessee)-2:], Start: r.date}
				v.Periods = append(v.Periods, p)
				o.Status, o.ChangeID, o.After = lessee.StatusApplied, changeID, &p
				touched.Note(v.VIN, p.ID, true, o.Line)
			case lessee.OpRemove:
				if open < 0 {
					reject(lessee.CodeNoActiveLessee)
					continue
				}
				before := v.Periods[open]
				v.Periods[open].End = r.date
				after := v.Periods[open]
				o.Status, o.ChangeID, o.Before, o.After = lessee.StatusApplied, changeID, &before, &after
				touched.Note(v.VIN, before.ID, false, o.Line)
			}
			o.Operation, o.RegistrationNumber, o.OnBehalfOf = r.op, v.RegistrationNumber, fleetOwner
			out = append(out, o)
		}
		return lessee.Decision{Outcomes: out, Writes: touched.Writes(st)}
	}
}

// cloneState copies what the tests inspect.
func cloneState(st *lessee.State) *lessee.State {
	c := lessee.NewState()
	for k, e := range st.Enterprises {
		e2 := *e
		c.Enterprises[k] = &e2
	}
	for k, v := range st.Vehicles {
		v2 := *v
		v2.Periods = append([]lessee.Period(nil), v.Periods...)
		c.Vehicles[k] = &v2
	}
	for k, d := range st.Delegations {
		c.Delegations[k] = append([]lessee.Delegation(nil), d...)
	}
	for k, v := range st.ByReg {
		c.ByReg[k] = v
	}
	return c
}

// results collects a job's stored results.
func results(t *testing.T, s *sqlstore.Store, jobID string) []lessee.Result {
	t.Helper()
	var out []lessee.Result
	if err := s.Results(context.Background(), jobID, func(o lessee.Result) error {
		out = append(out, o)
		return nil
	}); err != nil {
		t.Fatalf("results: %v", err)
	}
	return out
}

// audit returns all audit entries.
func audit(t *testing.T, s *sqlstore.Store, vin string) []sqlstore.AuditEntry {
	t.Helper()
	a, err := s.Audit(context.Background(), vin)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return a
}

// vehicle returns a stored vehicle.
func vehicle(t *testing.T, s *sqlstore.Store, vin string) lessee.Vehicle {
	t.Helper()
	v, err := s.Vehicle(context.Background(), vin)
	if err != nil {
		t.Fatalf("vehicle %s: %v", vin, err)
	}
	return v
}
