package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes the API report as a table with the machine, the runs, the
// database check and the goals, met or missed by how much.
func (r *APIReport) Print(w io.Writer) {
	fmt.Fprintf(w, "lessee bench --api: fleet %s of %s vehicles (registry of %s), %s\nmachine: %s\n",
		r.Fleet, itoa(r.FleetVehicles), itoa(r.RegistryVehicles), r.Machine.PostgreSQL, r.Machine)
	if len(r.ServeArgs) > 0 {
		fmt.Fprintf(w, "serve flags: %s\n", strings.Join(r.ServeArgs, " "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tchanges\twall\tchanges/s\tp50\tp95\tp99\tmax\tunexpected\t")
	line := func(name string, x APIRun) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, itoa(x.Applied), dur(x.Wall), itoa(int(x.ChangesPerSec())),
			ms(x.P50), ms(x.P95), ms(x.P99), ms(x.Max), itoa(x.Unexpected))
	}
	for _, t := range r.Throughput {
		line(fmt.Sprintf("closed loop, %d clients", t.Clients), t)
	}
	if l := r.GoalLatency; l != nil {
		line(fmt.Sprintf("open loop at %s/s (half the goal)", itoa(int(l.Rate))), *l)
	}
	if l := r.Latency; l != nil {
		line(fmt.Sprintf("open loop at %s/s (half the max)", itoa(int(l.Rate))), *l)
	}
	if c := r.Contention; c != nil {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\t%s\t\n", fmt.Sprintf("contention, %d clients on %d vehicles", c.Clients, c.Vehicles),
			itoa(c.Check.Applied), dur(c.Wall), itoa(c.Other))
	}
	tw.Flush()

	runs := append([]APIRun(nil), r.Throughput...)
	for _, l := range []*APIRun{r.GoalLatency, r.Latency} {
		if l != nil {
			runs = append(runs, *l)
		}
	}
	if len(runs) > 0 {
		fmt.Fprintln(w, "\nCPU per applied change (serve / all PostgreSQL processes / bench client); changes per API transaction; PostgreSQL sessions opened; meanwhile:")
		for _, x := range runs {
			name := fmt.Sprintf("%d clients", x.Clients)
			if x.Clients == 0 {
				name = fmt.Sprintf("%s/s", itoa(int(x.Rate)))
			}
			perTx := "?"
			if x.Transactions > 0 {
				perTx = fmt.Sprintf("%.1f", float64(x.Grouped)/float64(x.Transactions))
			}
			fmt.Fprintf(w, "  %-10s %s / %s / %s; %s changes/transaction; %d sessions; %d fleet exports (%s), %d autovacuum/analyze runs\n",
				name, us(x.ServeCPU), us(x.PostgresCPU), us(x.ClientCPU), perTx, x.Sessions, x.Exports, dur(x.ExportTime), x.Autovacuums)
		}
		for _, x := range runs {
			if x.FirstUnexpected != "" {
				fmt.Fprintf(w, "  first unexpected answer: %s\n", x.FirstUnexpected)
				break
			}
		}
	}
	if c := r.Contention; c != nil {
		fmt.Fprintf(w, "\ncontention: %s requests (%s of them late repeats of idempotent requests): %s applied, %s unchanged, %s rejected, %s other%s\n",
			itoa(c.Sent), itoa(c.LateRepeats), itoa(c.Applied), itoa(c.Unchanged), itoa(c.Rejected), itoa(c.Other), first(c.FirstOther))
		fmt.Fprintf(w, "  idempotency keys: %d, applied once with the same answer each time: %d; %d answers replayed\n", c.Keys, c.KeysOnce, c.Replayed)
		printCheck(w, c.Check)
	}
	fmt.Fprintf(w, "\nwhole run:\n")
	printCheck(w, r.Check)

	fmt.Fprintln(w, "\ngoals:")
	goal := func(met bool, format string, args ...any) {
		mark := "met   "
		if !met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	best, clients := 0.0, 0
	unexpected := 0
	for _, t := range r.Throughput {
		if t.ChangesPerSec() > best {
			best, clients = t.ChangesPerSec(), t.Clients
		}
		unexpected += t.Unexpected
	}
	goal(best >= GoalAPIChangesPerSec && unexpected == 0, "%s changes/s to different vehicles (%d clients; goal ≥ %s%s), %d unexpected answers",
		itoa(int(best)), clients, itoa(int(GoalAPIChangesPerSec)), missedBy(GoalAPIChangesPerSec, best), unexpected)
	if l := r.GoalLatency; l != nil {
		goal(l.P99 < GoalAPIP99 && l.Unexpected == 0, "p99 %s at %s changes/s, half the goal rate, open loop (goal < %s%s)",
			ms(l.P99), itoa(int(l.Rate)), ms(GoalAPIP99), missedBy(float64(l.P99), float64(GoalAPIP99)))
	} else {
		goal(false, "no latency run at half the goal rate (the highest rate did not reach it)")
	}
	if l := r.Latency; l != nil {
		goal(l.P99 < GoalAPIP99 && l.Unexpected == 0, "p99 %s at %s changes/s, half the max, open loop (goal < %s%s)",
			ms(l.P99), itoa(int(l.Rate)), ms(GoalAPIP99), missedBy(float64(l.P99), float64(GoalAPIP99)))
	} else {
		goal(false, "no latency run (no throughput measured)")
	}
	if c := r.Contention; c != nil {
		goal(c.Check.OK() && c.Other == 0 && c.KeysOnce == c.Keys && c.Applied > 0,
			"%d clients on %d vehicles: lost %d, doubled %d, overlapping periods %d, %d of %d idempotency keys applied once, %d other answers",
			c.Clients, c.Vehicles, c.Check.Lost, c.Check.Doubled, c.Check.Overlaps, c.KeysOnce, c.Keys, c.Other)
	}
	goal(r.Check.OK(), "whole run: every applied answer has its audit entry and no entry is without one (lost %d, doubled %d, overlapping periods %d)",
		r.Check.Lost, r.Check.Doubled, r.Check.Overlaps)
}

func printCheck(w io.Writer, c APICheck) {
	fmt.Fprintf(w, "  database: %s applied answers, %s audit entries (source api): lost %d, doubled %d; %s lessee periods for %s imported + added; %d overlapping%s\n",
		itoa(c.Applied), itoa(c.Audit), c.Lost, c.Doubled, itoa(c.Periods), itoa(c.WantPeriods), c.Overlaps, first(c.First))
}

// ms writes d in milliseconds, with a decimal below 10 ms.
func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// us writes d in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }
