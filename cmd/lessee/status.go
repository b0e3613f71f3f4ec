package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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

func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lessee status [--limit N]\n\nLists the most recent jobs of a running service, newest first.")
		fs.PrintDefaults()
	}
	server := fs.String("server", "http://127.0.0.1:8080", "HTTP address of the service")
	limit := fs.Int("limit", 20, "how many jobs")
	user := fs.String("operator-user", "", "operator user, when the service requires one")
	password := fs.String("operator-password", "", "operator password")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(*server, "/")+"/api/jobs?limit="+strconv.Itoa(*limit), nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if *user != "" {
		req.SetBasicAuth(*user, *password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %s answered %s", *server, resp.Status)
	}
	var jobs []jobRow
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&jobs); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tSTATE\tSUBMITTER\tFILE\tMODE\tROWS\tAPPLIED\tUNCHANGED\tREJECTED\tCODE\tJOB")
	for _, j := range jobs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\t%s\n", j.Started.Local().Format("2006-01-02 15:04:05"),
			j.State, j.Submitter, j.Name, j.modeLabel(), j.RowsDone, j.RowsTotal, j.Applied, j.Unchanged, j.Rejected, j.Code, j.ID)
	}
	return w.Flush()
}
