package validate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// TestDecideWithTrimmedHistory checks the promise of lessee.Keys.Since that
// stores rely on: leaving out every period that ended before a vehicle's
// HistoryFrom date changes no outcome, whatever the history (overlapping
// periods included) and whatever the rows, in file order or not. Bounded
// periods and periods that begin after a row's dates are among them, as
// an add conflicts with any period it would overlap: every such period
// ends after the add's start, so the cut-off keeps it, and the test counts
// conflicts with a later period and short leases recorded before one to
// show the rows reach them.
func TestDecideWithTrimmedHistory(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	job := testJob()
	day := func(n int) lessee.Date {
		return lessee.DateOf(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n))
	}
	lessees := []string{person1, person2}
	regs := map[string]string{vin1: "AB12345", vin4: "GH12345"}
	left, later, before := 0, 0, 0
	for iter := range 5000 {
		histories := map[string][]lessee.Period{}
		for _, vin := range []string{vin1, vin4} {
			d := r.IntN(60)
			for i := range r.IntN(7) {
				start := d + r.IntN(40) - 10 // sometimes overlapping the previous one
				end := start + 1 + r.IntN(120)
				histories[vin] = append(histories[vin], lessee.Period{
					ID: fmt.Sprintf("%s-%d", vin, i), LesseeID: lessees[r.IntN(2)], Start: day(start), End: day(end),
				})
				d = end
			}
			if n := len(histories[vin]); n > 0 && r.IntN(2) == 0 {
				histories[vin][n-1].End = ""
			}
			if r.IntN(3) == 0 {
				// A lease on file that begins after the rows' dates,
				// bounded or not.
				start := 700 + r.IntN(300)
				p := lessee.Period{ID: vin + "-later", LesseeID: lessees[r.IntN(2)], Start: day(start)}
				if r.IntN(2) == 0 {
					p.End = day(start + 1 + r.IntN(200))
				}
				histories[vin] = append(histories[vin], p)
			}
		}
		var in []cells
		for range 1 + r.IntN(5) {
			vin := []string{vin1, vin4}[r.IntN(2)]
			c := cells{lessee.ColLesseeID: lessees[r.IntN(2)]}
			if r.IntN(4) == 0 {
				c[lessee.ColRegistrationNumber] = regs[vin]
			} else {
				c[lessee.ColVIN] = vin
			}
			if r.IntN(2) == 0 {
				c[lessee.ColOperation] = "add"
				start := r.IntN(900)
				c[lessee.ColStartDate] = string(day(start))
				if r.IntN(2) == 0 {
					c[lessee.ColEndDate] = string(day(start + 1 + r.IntN(200)))
				}
			} else {
				c[lessee.ColOperation] = "remove"
				if r.IntN(5) != 0 { // else the processing date
					c[lessee.ColEndDate] = string(day(r.IntN(900)))
				}
				if r.IntN(3) == 0 {
					delete(c, lessee.ColLesseeID)
				}
			}
			in = append(in, c)
		}
		rs := rows(t, job, in...)
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
		want := Decide(Config{}, job, full, rs).Outcomes
		got := Decide(Config{}, job, trimmed, rs).Outcomes
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iteration %d: history %+v\nrows %+v\nwith the trimmed history: %+v\nwith all of it:         %+v",
				iter, histories, in, got, want)
		}
		for i, o := range want {
			ch := rs[i].Change
			if ch.Operation != lessee.OpAdd || rs[i].Problem != nil {
				continue
			}
			for _, p := range histories[ch.VIN] {
				if !ch.StartDate.Before(p.Start) {
					continue
				}
				switch {
				case o.Code == lessee.CodeLesseeConflict && strings.Contains(o.Message, "registered from "+string(p.Start)):
					later++
				case o.Status == lessee.StatusApplied && !ch.EndDate.IsZero() && !p.Start.Before(ch.EndDate):
					before++
				}
			}
		}
	}
	if left < 1000 {
		t.Fatalf("only %d periods were left out over all iterations: the test does not exercise trimming", left)
	}
	if later < 300 || before < 300 {
		t.Fatalf("%d conflicts with a later period, %d leases recorded before one: the rows do not reach periods after them", later, before)
	}
	t.Logf("%d periods left out; %d conflicts with a later period, %d leases recorded before one", left, later, before)
}
