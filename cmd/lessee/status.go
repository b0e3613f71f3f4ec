package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// jobRow is the part of the job API that `lessee status` prints.
type jobRow struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Submitter string    `json:"submitter"`
	Name      string    `json:"name"`
	RowsTotal int       `json:"rows_total"`
	RowsDone  int       `json:"rows_done"`
	Applied   int       `json:"applied"`
	Unchanged int       `json:"unchanged"`
	Rejected  int       `json:"rejected"`
	Code      string    `json:"code"`
	Mode      string    `json:"mode"`
	DryRun    bool      `json:"dry_run"`
	Started   time.Time `json:"started"`
}

// modeLabel names how a job's file was meant: changes or snapshot, and
// whether it was a dry run.
func (j jobRow) modeLabel() string {
	m := j.Mode
	if m == "" {
		m = "changes"
	}
	if j.DryRun {
		m += " (dry run)"
	}
	return m
}

const statusHelp = `Lists the most recent jobs of a running service, newest first. The service
is found as serve was told: --listen (or --server), or LESSEE_LISTEN.

Examples:
  lessee status
  lessee status --limit 100 --operator-user ops --operator-password secret`

func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("status", "lessee status [--limit N] [flags]", statusHelp, stdout)
	var c clientFlags
	c.registerHTTP(cmd.fs)
	limit := cmd.fs.Int("limit", 20, "how many jobs (1 to 1000)")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return cmd.usageErr("--limit must be between 1 and 1000, not %d", *limit)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.get(ctx, "/api/jobs?limit="+strconv.Itoa(*limit))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var jobs []jobRow
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&jobs); err != nil {
		return fmt.Errorf("the service at %s answered something other than a job list: %w", c.serverURL(), err)
	}
	if len(jobs) == 0 {
		fmt.Fprintln(stdout, "no jobs yet: upload a file with 'lessee submit'")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tSTATE\tSUBMITTER\tFILE\tMODE\tROWS\tAPPLIED\tUNCHANGED\tREJECTED\tCODE\tJOB")
	for _, j := range jobs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\t%s\n", j.Started.Local().Format("2006-01-02 15:04:05"),
			j.State, j.Submitter, j.Name, j.modeLabel(), j.RowsDone, j.RowsTotal, j.Applied, j.Unchanged, j.Rejected, j.Code, j.ID)
	}
	return w.Flush()
}
