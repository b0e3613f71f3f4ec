package validate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// registry is what storage holds of the fixture's vehicles vin1 and vin4:
// their lessee periods, by VIN.
type registry map[string][]lessee.Period

var propertyRegs = map[string]string{vin1: "AB12345", vin4: "GH12345"}

// decideInChunks decides rows in chunks of size the way the worker does:
// each chunk against a state loaded from reg as storage loads it (cut per
// vehicle by KeysFor's Since), its writes folded into reg as storage
// persists them (Opened inserted, Closed given their new end). It checks
// after every chunk that no two periods of a vehicle overlap.
func decideInChunks(tb testing.TB, job Job, reg registry, rs []lessee.Row, size int) ([]lessee.Outcome, int) {
	tb.Helper()
	var out []lessee.Outcome
	writes := 0
	for len(rs) > 0 {
		chunk := rs[:min(size, len(rs))]
		rs = rs[len(chunk):]
		keys := KeysFor(job, chunk)
		st := newFixture().state
		for vin, regNumber := range propertyRegs {
			since := keys.HistoryFrom(vin, regNumber)
			st.Vehicles[vin].Periods = nil
			for _, p := range reg[vin] {
				if p.End.IsZero() || !p.End.Before(since) {
					st.Vehicles[vin].Periods = append(st.Vehicles[vin].Periods, p)
				}
			}
		}
		d := Decide(Config{}, job, st, chunk)
		for _, w := range d.Writes.Opened {
			reg[w.VIN] = append(reg[w.VIN], w.Period)
		}
		for _, w := range d.Writes.Closed {
			i := slices.IndexFunc(reg[w.VIN], func(p lessee.Period) bool { return p.ID == w.Period.ID })
			if i < 0 {
				tb.Fatalf("closed period %+v is not in the registry", w)
			}
			reg[w.VIN][i].End = w.Period.End
		}
		writes += len(d.Writes.Opened) + len(d.Writes.Closed)
		out = append(out, d.Outcomes...)
		for vin, ps := range reg {
			for i, p := range ps {
				for _, q := range ps[i+1:] {
					if shareADay(p, q) {
						tb.Fatalf("%s: after a chunk, periods %+v and %+v overlap", vin, p, q)
					}
				}
			}
		}
	}
	return out, writes
}

func (r registry) clone() registry {
	c := registry{}
	for vin, ps := range r {
		c[vin] = slices.Clone(ps)
	}
	return c
}

// TestDecideNeverOverlaps is the property of issue 19: whatever the
// history on file (without overlaps) and whatever the rows (adds with and
// without an end date, removes with and without a lessee, by VIN or by
// registration number), decided in chunks with the history each chunk
// loads, no two periods of a vehicle ever overlap; and the rows that were
// accepted (applied or unchanged), uploaded again, apply nothing.
//
// Each vehicle's removes come in date order, as a file states what
// happened. Without it, uploading again may rightly apply a row: "remove X
// on 1 June", "remove X on 1 March", "add X from 1 April" leaves X's new
// period in force on 1 June, which the first row then ends, as it would in
// any file naming it. A rejected row, too, may apply when its file is
// uploaded again (an add, then the remove that makes room for it), so only
// accepted rows are uploaded again; every row is, too, to check that the
// invariant still holds.
func TestDecideNeverOverlaps(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(19, 2026))
	day := func(n int) lessee.Date {
		return lessee.DateOf(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n))
	}
	lessees := []string{person1, person2, dnumber, orgC}
	vins := []string{vin1, vin4}
	var applied, conflicts, reapplied int
	for iter := range 4000 {
		reg := registry{}
		for _, vin := range vins {
			d := r.IntN(300)
			for i := range r.IntN(5) {
				start := d + r.IntN(3)*r.IntN(90) // often the day the last one ends
				end := start + 1 + r.IntN(250)
				reg[vin] = append(reg[vin], lessee.Period{
					ID: fmt.Sprintf("%s-%d", vin, i), LesseeID: lessees[r.IntN(len(lessees))], Start: day(start), End: day(end),
				})
				d = end
			}
			if n := len(reg[vin]); n > 0 && r.IntN(2) == 0 {
				reg[vin][n-1].End = ""
			}
			// Shuffled: the decider must not rely on periods coming in date order.
			r.Shuffle(len(reg[vin]), func(i, j int) { reg[vin][i], reg[vin][j] = reg[vin][j], reg[vin][i] })
		}
		start := reg.clone()

		var in []cells
		var removes = map[string][]int{} // by VIN: the indexes of its removes in in
		for range 1 + r.IntN(12) {
			vin := vins[r.IntN(len(vins))]
			c := cells{lessee.ColLesseeID: lessees[r.IntN(len(lessees))]}
			if r.IntN(4) == 0 {
				c[lessee.ColRegistrationNumber] = propertyRegs[vin]
			} else {
				c[lessee.ColVIN] = vin
			}
			if r.IntN(5) < 3 {
				c[lessee.ColOperation] = "add"
				s := r.IntN(1100)
				c[lessee.ColStartDate] = string(day(s))
				if r.IntN(2) == 0 {
					c[lessee.ColEndDate] = string(day(s + 1 + r.IntN(300)))
				}
			} else {
				c[lessee.ColOperation] = "remove"
				c[lessee.ColEndDate] = string(day(r.IntN(1100)))
				if r.IntN(2) == 0 {
					delete(c, lessee.ColLesseeID)
				}
				removes[vin] = append(removes[vin], len(in))
			}
			in = append(in, c)
		}
		for _, idx := range removes {
			var dates []string
			for _, i := range idx {
				dates = append(dates, in[i][lessee.ColEndDate])
			}
			slices.Sort(dates)
			for k, i := range idx {
				in[i][lessee.ColEndDate] = dates[k]
			}
		}

		job := testJob()
		size := 1 + r.IntN(4)
		first, _ := decideInChunks(t, job, reg, rows(t, job, in...), size)
		var accepted []cells
		for i, o := range first {
			switch {
			case o.Status == lessee.StatusApplied:
				applied++
				accepted = append(accepted, in[i])
			case o.Status == lessee.StatusUnchanged:
				accepted = append(accepted, in[i])
			case o.Code == lessee.CodeLesseeConflict:
				conflicts++
			}
		}

		job.ID = "job2"
		after := reg.clone()
		again, writes := decideInChunks(t, job, reg, rows(t, job, accepted...), size)
		for i, o := range again {
			if o.Status == lessee.StatusApplied {
				t.Fatalf("iteration %d: history %+v\nrows %+v\nfirst %+v\naccepted row %d applied again: %+v",
					iter, start, in, first, i, o)
			}
		}
		if writes != 0 || !reflect.DeepEqual(reg, after) {
			t.Fatalf("iteration %d: uploading the accepted rows again wrote %d periods", iter, writes)
		}

		job.ID = "job3"
		all, _ := decideInChunks(t, job, reg, rows(t, job, in...), size)
		for _, o := range all {
			if o.Status == lessee.StatusApplied {
				reapplied++
			}
		}
	}
	// The property says little unless rows apply and conflict often.
	if applied < 4000 || conflicts < 2000 {
		t.Fatalf("%d rows applied, %d conflicts: the rows do not exercise the rule", applied, conflicts)
	}
	t.Logf("%d applied, %d conflicts, %d applied when the whole file came again", applied, conflicts, reapplied)
}
