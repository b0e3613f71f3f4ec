package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetreg/lessee"
)

// Goals of the benchmark (issue 5), as ratios measured in one run.
const (
	GoalNaiveSpeedup = 20.0            // end-to-end CSV rows/s at least this many times naive's
	GoalFloorFactor  = 4.0             // end-to-end CSV wall time at most this many times the COPY floor's
	GoalXLSXFactor   = 1.5             // end-to-end XLSX at most this many times the bare excelize read
	GoalPeakRSS      = 200 << 20       // bytes
	GoalSmallReceipt = 2 * time.Second // small file's receipt while the large one runs
	// GoalWriteFloorFactor (issue 18): end-to-end CSV wall time at most
	// this many times the write floor's, on either database.
	GoalWriteFloorFactor = 2.0
	// GoalXLSXFactor18 (issue 18): end-to-end XLSX at most this many times
	// the bare excelize read.
	GoalXLSXFactor18 = 2.0
)

// Print writes the report as a table with the machine, the stages of each
// end-to-end run and the goals, met or missed by how much.
func (r *Report) Print(w io.Writer) {
	chunk := "serve default"
	if r.ChunkSize > 0 {
		chunk = itoa(r.ChunkSize)
	}
	fmt.Fprintf(w, "lessee bench: %s rows, chunk size %s, end to end on %s\nmachine: %s\n\n", itoa(r.Rows), chunk, r.Database, r.Machine)
	var wfloor Measure
	if r.WriteFloor != nil {
		wfloor = r.WriteFloor.Measure
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trows\twall\trows/s\tspeed vs naive\ttime vs COPY floor\ttime vs write floor\tpeak RSS\t")
	line := func(name string, m Measure, rss string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, itoa(m.Rows), dur(m.Wall), itoa(int(m.RowsPerSec())),
			ratio(m.RowsPerSec(), r.Naive.RowsPerSec()), ratio(perRow(m), perRow(r.Floor)), ratio(perRow(m), perRow(wfloor)), rss)
	}
	if r.CSV != nil {
		line("end to end, CSV", r.CSV.Measure, mib(r.CSV.PeakRSS))
	}
	if r.XLSX != nil {
		line("end to end, XLSX", r.XLSX.Measure, mib(r.XLSX.PeakRSS))
	}
	if wf := r.WriteFloor; wf != nil {
		how := "COPY"
		if strings.HasPrefix(wf.Database, "SQLite") {
			how = "SQLite INSERT"
		}
		line("write floor ("+how+" of the run's writes)", wf.Measure, "")
	}
	if r.Naive.Rows > 0 {
		line("naive (row at a time)", r.Naive, "")
	}
	if r.Floor.Rows > 0 {
		line("floor (COPY of the input)", r.Floor, "")
	}
	line("parse only, encoding/csv", r.ParseCSV, "")
	if r.ParseXLSX != nil {
		line("parse only, excelize", *r.ParseXLSX, "")
	}
	tw.Flush()

	for _, e := range []*EndToEnd{r.CSV, r.XLSX} {
		if e == nil {
			continue
		}
		fmt.Fprintf(w, "\n%s end to end (%s bytes): upload %s, first pass (queue, download, scan) %s, second pass (read, validate, apply) %s, receipt %s\n",
			strings.ToUpper(string(e.Format)), itoa(int(e.Size)), dur(e.Upload), dur(e.FirstPass), dur(e.SecondPass), dur(e.Receipt))
		if len(e.Worker) > 0 {
			var parts []string
			for _, k := range []string{"read", "validate", "apply", "receipt"} {
				if d, ok := e.Worker[k]; ok {
					parts = append(parts, k+" "+dur(d))
				}
			}
			fmt.Fprintf(w, "  worker stages: %s\n", strings.Join(parts, ", "))
		}
		fmt.Fprintf(w, "  receipt: %s applied, %s unchanged, %s rejected; %s rows differ from the intended outcome",
			itoa(e.Applied), itoa(e.Unchanged), itoa(e.Rejected), itoa(e.Mismatches))
		if e.FirstMismatch != "" {
			fmt.Fprintf(w, " (first: %s)", e.FirstMismatch)
		}
		fmt.Fprintln(w)
		if s := e.Small; s != nil {
			during := "while the large file ran"
			if !s.Overlapped {
				during = "(the large file finished first)"
			}
			fmt.Fprintf(w, "  small file of %d rows sent at row %s: receipt after %s %s; %d rows differ from the intended outcome\n",
				s.Rows, itoa(s.AtRowsDone), dur(s.ToReceipt), during, s.Mismatches)
		}
	}
	if wf := r.WriteFloor; wf != nil {
		fmt.Fprintf(w, "\nwrite floor on %s: the run's writes replayed chunk by chunk (%s periods inserted, %s end dates set), then %s results and %s audit entries, into a fresh registry (every index and constraint) in one transaction:\n  ",
			wf.Database, itoa(wf.Periods), itoa(wf.Updates), itoa(wf.Results), itoa(wf.Audit))
		parts := make([]string, len(wf.Steps))
		for i, s := range wf.Steps {
			parts[i] = s.Name + " " + dur(s.Wall)
		}
		fmt.Fprintln(w, strings.Join(parts, "; "))
	}
	if r.Naive.Rows > 0 && r.Naive.Rows < r.Rows {
		fmt.Fprintf(w, "\nnaive ran the first %s rows; its rows/s is what the ratios use\n", itoa(r.Naive.Rows))
	}

	fmt.Fprintln(w, "\ngoals:")
	goal := func(met bool, format string, args ...any) {
		mark := "met   "
		if !met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	if e := r.CSV; e != nil {
		if r.Naive.Rows > 0 {
			s := e.RowsPerSec() / r.Naive.RowsPerSec()
			goal(s >= GoalNaiveSpeedup, "CSV end to end %.1f× naive rows/s (goal ≥ %.0f×)", s, GoalNaiveSpeedup)
		}
		if r.Floor.Rows > 0 {
			f := perRow(e.Measure) / perRow(r.Floor)
			goal(f <= GoalFloorFactor, "CSV end to end %.1f× the COPY floor's time (goal ≤ %.0f×%s)", f, GoalFloorFactor, missedBy(f, GoalFloorFactor))
		}
		if wf := r.WriteFloor; wf != nil && wf.Rows > 0 {
			f := perRow(e.Measure) / perRow(wf.Measure)
			db := "PostgreSQL"
			if strings.HasPrefix(wf.Database, "SQLite") {
				db = "embedded SQLite"
			}
			goal(f <= GoalWriteFloorFactor, "%s CSV end to end %.2f× its write floor's time (goal ≤ %.0f×%s)", db, f, GoalWriteFloorFactor, missedBy(f, GoalWriteFloorFactor))
		}
		goal(e.PeakRSS < GoalPeakRSS, "CSV peak RSS %s (goal < %s)", mib(e.PeakRSS), mib(GoalPeakRSS))
		if s := e.Small; s != nil {
			goal(s.ToReceipt < GoalSmallReceipt && s.Overlapped, "small file's receipt %s after upload while the large file ran (goal < %s)", dur(s.ToReceipt), dur(GoalSmallReceipt))
		}
		goal(e.Mismatches == 0, "every CSV receipt row has its intended outcome")
	}
	if e := r.XLSX; e != nil && r.ParseXLSX != nil {
		f := perRow(e.Measure) / perRow(*r.ParseXLSX)
		goal(f <= GoalXLSXFactor, "XLSX end to end %.2f× the bare excelize read's time (goal ≤ %.1f×%s)", f, GoalXLSXFactor, missedBy(f, GoalXLSXFactor))
		goal(f <= GoalXLSXFactor18, "XLSX end to end %.2f× the bare excelize read's time (issue 18's goal ≤ %.1f×%s)", f, GoalXLSXFactor18, missedBy(f, GoalXLSXFactor18))
		if wf := r.WriteFloor; wf != nil && wf.Rows == e.Rows && r.ParseXLSX.Wall > 0 {
			// No row may be applied before the first pass has read the
			// whole workbook (a file refused late must have applied
			// nothing), and the apply cannot beat the write floor.
			least := e.FirstPass + wf.Wall
			fmt.Fprintf(w, "  note   XLSX: its first pass (%s, an excelize read of the whole workbook before any row may be applied) plus the write floor (%s) alone are %.2f× the bare excelize read\n",
				dur(e.FirstPass), dur(wf.Wall), least.Seconds()/r.ParseXLSX.Wall.Seconds())
		}
		goal(e.PeakRSS < GoalPeakRSS, "XLSX peak RSS %s (goal < %s)", mib(e.PeakRSS), mib(GoalPeakRSS))
		goal(e.Mismatches == 0, "every XLSX receipt row has its intended outcome")
	}
}

// perRow is the time a measure spent per row, so that measures over
// different row counts compare.
func perRow(m Measure) float64 {
	if m.Rows == 0 {
		return 0
	}
	return m.Wall.Seconds() / float64(m.Rows)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func missedBy(got, goal float64) string {
	if got <= goal {
		return ""
	}
	return fmt.Sprintf("; missed by %.1f×", got/goal)
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func mib(b int64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// GoalSnapshotFactor is the most a snapshot may take of the time of a
// change file of the same row count, on the same fleet.
const GoalSnapshotFactor = 2.0

// Print writes the snapshot report as a table with the machine, the stages
// of each run and the goals, met or missed by how much.
func (r *SnapshotReport) Print(w io.Writer) {
	chunk := "serve default"
	if r.ChunkSize > 0 {
		chunk = itoa(r.ChunkSize)
	}
	fmt.Fprintf(w, "lessee bench --snapshot: fleet %s of %s vehicles (registry of %s), %s, chunk size %s\nmachine: %s\n\n",
		r.Fleet, itoa(r.FleetVehicles), itoa(r.RegistryVehicles), r.Database, chunk, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trows\twall\trows/s\ttime vs change file\tpeak RSS\t")
	base := r.Changes
	line := func(name string, m Measure, vs string, rss int64) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, itoa(m.Rows), dur(m.Wall), itoa(int(m.RowsPerSec())), vs, mib(rss))
	}
	if base != nil {
		line("change file, same rows", base.Measure, "1.00×", base.PeakRSS)
	}
	if s := r.Snapshot; s != nil {
		vs := "-"
		if base != nil {
			vs = ratio(s.Wall.Seconds(), base.Wall.Seconds())
		}
		line("snapshot", Measure{Rows: s.FileRows, Wall: s.Wall}, vs, s.PeakRSS)
	}
	if x := r.Export; x != nil {
		line("export of the fleet", x.Measure, "", x.PeakRSS)
	}
	if x := r.LargeExport; x != nil {
		line("export, "+itoa(x.Rows)+"-vehicle fleet", x.Measure, "", x.PeakRSS)
	}
	tw.Flush()

	stages := func(e *EndToEnd) {
		fmt.Fprintf(w, "  upload %s, first pass %s, second pass %s, receipt %s", dur(e.Upload), dur(e.FirstPass), dur(e.SecondPass), dur(e.Receipt))
		var parts []string
		for _, k := range []string{"read", "validate", "apply", "receipt"} {
			if d, ok := e.Worker[k]; ok {
				parts = append(parts, k+" "+dur(d))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "; worker: %s", strings.Join(parts, ", "))
		}
		fmt.Fprintf(w, "\n  service's fleet exports while it ran: %d (%s)\n", e.ServiceExports, dur(e.ServiceExportTime))
	}
	if e := base; e != nil {
		fmt.Fprintf(w, "\nchange file (%s bytes):\n", itoa(int(e.Size)))
		stages(e)
		fmt.Fprintf(w, "  receipt: %s applied, %s unchanged, %s rejected; %s rows differ from the intended outcome%s\n",
			itoa(e.Applied), itoa(e.Unchanged), itoa(e.Rejected), itoa(e.Mismatches), first(e.FirstMismatch))
	}
	if s := r.Snapshot; s != nil {
		fmt.Fprintf(w, "\nsnapshot (%s bytes):\n", itoa(int(s.Size)))
		stages(&s.EndToEnd)
		fmt.Fprintf(w, "  receipt: %s lines (%s rows, %s absent vehicles): keep %s, add %s, replace %s, remove %s, rejected %s; %s lines differ from the intended operation%s\n",
			itoa(s.Rows), itoa(s.FileRows), itoa(s.Absent), itoa(s.Operations[lessee.OpKeep]), itoa(s.Operations[lessee.OpAdd]),
			itoa(s.Operations[lessee.OpReplace]), itoa(s.Operations[lessee.OpRemove]), itoa(s.Rejected), itoa(s.Mismatches), first(s.FirstMismatch))
	}
	for _, x := range []*ExportRun{r.Export, r.LargeExport} {
		if x == nil {
			continue
		}
		fmt.Fprintf(w, "\nexport of %s vehicles (%s bytes): %s with a lessee; %s rows differ from the fleet's state%s",
			itoa(x.Rows), itoa(int(x.Size)), itoa(x.Leased), itoa(x.Mismatches), first(x.FirstMismatch))
		if x.Service > 0 {
			fmt.Fprintf(w, "; the service's own export after the snapshot took %s", dur(x.Service))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "\ngoals:")
	goal := func(met bool, format string, args ...any) {
		mark := "met   "
		if !met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	if s := r.Snapshot; s != nil && base != nil {
		f := s.Wall.Seconds() / base.Wall.Seconds()
		goal(f <= GoalSnapshotFactor, "snapshot %.2f× the time of a change file of as many rows (goal ≤ %.0f×%s)", f, GoalSnapshotFactor, missedBy(f, GoalSnapshotFactor))
		goal(s.PeakRSS < GoalPeakRSS, "snapshot peak RSS %s, change file %s (goal < %s)", mib(s.PeakRSS), mib(base.PeakRSS), mib(GoalPeakRSS))
		goal(s.Mismatches == 0 && base.Mismatches == 0 && r.PlanMatches(),
			"every receipt line has its intended operation and outcome, the operations add up to the generated plan")
	}
	for _, x := range []*ExportRun{r.Export, r.LargeExport} {
		if x != nil {
			goal(x.PeakRSS < GoalPeakRSS, "export of %s vehicles: peak RSS %s (goal < %s)", itoa(x.Rows), mib(x.PeakRSS), mib(GoalPeakRSS))
			goal(x.Mismatches == 0, "the export of %s vehicles lists every vehicle of the fleet with the lessee it has", itoa(x.Rows))
		}
	}
}

// PlanMatches reports whether the snapshot's receipt has the generated
// plan's operations, absent vehicles and duplicates.
func (r *SnapshotReport) PlanMatches() bool {
	s := r.Snapshot
	if s == nil || s.FileRows != r.Plan.Rows || s.Absent != r.Plan.LeftOut || s.Rejected != r.Plan.Duplicates ||
		s.JobRows != r.Plan.Rows+r.Plan.LeftOut {
		return false
	}
	for _, m := range []map[lessee.Operation]int{r.Plan.Operations, s.Operations} {
		for op := range m {
			if s.Operations[op] != r.Plan.Operations[op] {
				return false
			}
		}
	}
	return true
}

func first(mismatch string) string {
	if mismatch == "" {
		return ""
	}
	return " (first: " + mismatch + ")"
}
