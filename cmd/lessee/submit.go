package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/s3store"
)

// clientFlags are the flags of commands that talk to a running service as
// a client: its S3 endpoint and its HTTP API.
type clientFlags struct {
	S3Endpoint string
	AccessKey  string
	SecretKey  string
	Region     string
	Bucket     string
	Server     string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "http://127.0.0.1:9000", "S3 endpoint of the service")
	fs.StringVar(&c.AccessKey, "s3-access-key", defaultAccessKey, "S3 access key")
	fs.StringVar(&c.SecretKey, "s3-secret-key", defaultSecretKey, "S3 secret key")
	fs.StringVar(&c.Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&c.Bucket, "bucket", "lessee", "S3 bucket")
	fs.StringVar(&c.Server, "server", "http://127.0.0.1:8080", "HTTP address of the service, for progress and job lists")
}

func (c *clientFlags) objects(ctx context.Context) (*s3store.Client, error) {
	objects, err := s3store.NewClient(ctx, s3store.Config{
		Endpoint: c.S3Endpoint, Region: c.Region, AccessKey: c.AccessKey, SecretKey: c.SecretKey, Bucket: c.Bucket,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return objects, nil
}

// submitOptions are the flags of lessee submit.
type submitOptions struct {
	clientFlags
	OperatorUser     string
	OperatorPassword string
	As               string
	Name             string
	DryRun           bool
	Snapshot         bool
	Wait             bool
	Timeout          time.Duration
	Poll             time.Duration
}

func (o *submitOptions) register(fs *flag.FlagSet) {
	o.clientFlags.register(fs)
	fs.StringVar(&o.OperatorUser, "operator-user", "", "operator user for the progress API, when the service requires one")
	fs.StringVar(&o.OperatorPassword, "operator-password", "", "operator password for the progress API")
	fs.StringVar(&o.As, "as", "", "organisation number of the submitter (required)")
	fs.StringVar(&o.Name, "name", "", "object name below the upload prefix (default: the file's base name)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "upload to dryrun/ORGNR/ (with --snapshot: dryrun-snapshot/ORGNR/): every row is judged, nothing applied; the receipt is <name>.dryrun.receipt.csv")
	fs.BoolVar(&o.Snapshot, "snapshot", false, "upload to snapshot/ORGNR/: FILE states the whole desired lessee state of one fleet")
	fs.BoolVar(&o.Wait, "wait", false, "wait for the receipt, showing progress, and print the summary")
	fs.DurationVar(&o.Timeout, "timeout", time.Hour, "how long --wait waits")
	fs.DurationVar(&o.Poll, "poll", 500*time.Millisecond, "how often --wait polls")
}

// source is the upload prefix the flags choose: inbox/, snapshot/,
// dryrun/ or dryrun-snapshot/.
func (o *submitOptions) source() objectkey.Source {
	mode := lessee.ModeChanges
	if o.Snapshot {
		mode = lessee.ModeSnapshot
	}
	return objectkey.SourceOf(mode, o.DryRun)
}

// errRefused is returned by submit --wait when the service refused the file.
var errRefused = errors.New("file refused")

func runSubmit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: lessee submit --as ORGNR [--dry-run] [--snapshot] [--wait] FILE

Uploads FILE to inbox/ORGNR/ and, with --wait, shows progress until the receipt
exists, then prints the summary. --snapshot uploads to snapshot/ORGNR/ (FILE is
the whole desired lessee state of one fleet); --dry-run to dryrun/ORGNR/, and
both together to dryrun-snapshot/ORGNR/: the receipt tells what the file would
do, nothing is applied, and it is written as <name>.dryrun.receipt.csv beside
the real receipts, which it never replaces.
Exit status: 0 when the file was processed (even with rejected rows), 1 when it
was refused or on error, 2 on a usage error.`)
		fs.PrintDefaults()
	}
	var o submitOptions
	o.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 || o.As == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	if err := ident.OrgNr(o.As); err != nil {
		return fmt.Errorf("--as %q: %w", o.As, err)
	}
	path := fs.Arg(0)
	if o.Name == "" {
		o.Name = filepath.Base(path)
	}
	key := o.source().Key(o.As, o.Name)
	if pk := objectkey.Parse(key); pk.Verdict != objectkey.OK {
		return fmt.Errorf("cannot upload as %s: %s", key, pk.Reason)
	}

	objects, err := o.objects(ctx)
	if err != nil {
		return err
	}
	if err := objects.PutFile(ctx, key, path, "application/octet-stream"); err != nil {
		return err
	}
	head, err := objects.Head(ctx, key)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	// The service names the upload from the same HEAD or listing, so this
	// is the job it will run.
	upload := intake.UploadOf(o.Bucket, head)
	version, jobID := upload.Version, intake.JobID(upload.Bucket, upload.Key, upload.Version)
	fmt.Fprintf(stdout, "uploaded %s to s3://%s/%s (job %s)\n", path, o.Bucket, key, jobID)
	if !o.Wait {
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// The job's own summary in its history folder, or the latest one when
	// it is this version's: by the time this job ends the latest keys may
	// show a newer upload under the same name.
	summaryKeys := []string{objectkey.HistoryFor(o.As, jobID, o.Name, o.DryRun).Summary, objectkey.ReceiptsFor(o.As, o.Name, o.DryRun).Summary}
	summary, err := waitForSummary(ctx, &o, objects, summaryKeys, version, jobID, o.Poll, stderr)
	if err != nil {
		return err
	}
	printSummary(stdout, summary)
	if summary.Status == "refused" {
		return fmt.Errorf("%w: %s: %s", errRefused, summary.Code, summary.Message)
	}
	return nil
}

// waitForSummary polls summaryKeys for the summary of this upload's
// version, showing the job's progress from the service's API while it
// runs.
func waitForSummary(ctx context.Context, c *submitOptions, objects *s3store.Client, summaryKeys []string, version, jobID string,
	poll time.Duration, stderr io.Writer) (receipt.Summary, error) {
	bar := progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("queued"),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	defer bar.Finish()
	total := -1
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		for _, summaryKey := range summaryKeys {
			var buf bytes.Buffer
			if _, err := objects.Download(ctx, summaryKey, "", &buf); err == nil {
				var s receipt.Summary
				// A summary of another upload with the same name may be
				// there; only this version's counts.
				if json.Unmarshal(buf.Bytes(), &s) == nil && s.Version == version {
					return s, nil
				}
			} else if lessee.ErrorCode(err) != lessee.ENOTFOUND && ctx.Err() == nil {
				fmt.Fprintf(stderr, "\rwaiting: %v\n", err)
			}
		}
		if p, err := fetchProgress(ctx, c, jobID); err == nil {
			if p.RowsTotal > 0 && p.RowsTotal != total {
				total = p.RowsTotal
				bar.ChangeMax(total)
			}
			bar.Describe(p.State)
			bar.Set(p.RowsDone)
		}
		select {
		case <-ctx.Done():
			return receipt.Summary{}, fmt.Errorf("no receipt for job %s yet: %w", jobID, ctx.Err())
		case <-tick.C:
		}
	}
}

// jobProgress is the part of the service's job API that submit shows.
type jobProgress struct {
	State     string `json:"state"`
	RowsTotal int    `json:"rows_total"`
	RowsDone  int    `json:"rows_done"`
}

func fetchProgress(ctx context.Context, c *submitOptions, jobID string) (jobProgress, error) {
	var p jobProgress
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Server, "/")+"/api/jobs/"+jobID, nil)
	if err != nil {
		return p, err
	}
	if c.OperatorUser != "" {
		req.SetBasicAuth(c.OperatorUser, c.OperatorPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("job api: %s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p)
	return p, err
}

func printSummary(w io.Writer, s receipt.Summary) {
	fmt.Fprintf(w, "status:    %s\n", s.Status)
	mode := s.Mode
	if mode == "" {
		mode = string(lessee.ModeChanges) // a summary of a service before modes
	}
	if s.DryRun {
		mode += " (dry run: nothing applied)"
	}
	fmt.Fprintf(w, "mode:      %s\n", mode)
	if s.Code != "" {
		fmt.Fprintf(w, "code:      %s\nmessage:   %s\n", s.Code, s.Message)
	}
	fmt.Fprintf(w, "rows:      %d (applied %d, unchanged %d, rejected %d)\n", s.Rows, s.Applied, s.Unchanged, s.Rejected)
	codes := make([]string, 0, len(s.Codes))
	for c := range s.Codes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  %-28s %d\n", c, s.Codes[c])
	}
	if s.Operations != nil {
		fmt.Fprintf(w, "operations: %s\n", formatOperations(s.Operations))
	}
	if len(s.IgnoredColumns) > 0 {
		fmt.Fprintf(w, "ignored columns: %s\n", strings.Join(s.IgnoredColumns, ", "))
	}
	fmt.Fprintf(w, "receipt:   %s\n", s.Receipt)
}

// formatOperations lists a snapshot's counts per derived operation: keep,
// add, replace, remove, then any other in name order.
func formatOperations(ops map[string]int) string {
	names := make([]string, 0, len(ops))
	for op := range ops {
		if !slices.Contains(receipt.SnapshotOperations, lessee.Operation(op)) {
			names = append(names, op)
		}
	}
	sort.Strings(names)
	parts := make([]string, 0, len(ops))
	for _, op := range receipt.SnapshotOperations {
		parts = append(parts, fmt.Sprintf("%s %d", op, ops[string(op)]))
	}
	for _, op := range names {
		parts = append(parts, fmt.Sprintf("%s %d", op, ops[op]))
	}
	return strings.Join(parts, ", ")
}

func runReceipt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: lessee receipt [--summary] KEY

Prints the receipt of an upload. KEY is the receipt key, or the upload's key
inbox/<orgnr>/<name>, snapshot/<orgnr>/<name>, dryrun/<orgnr>/<name> or
dryrun-snapshot/<orgnr>/<name> (a dry run's is <name>.dryrun.receipt.csv).`)
		fs.PrintDefaults()
	}
	var c clientFlags
	c.register(fs)
	summary := fs.Bool("summary", false, "print the summary JSON instead of the receipt CSV")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	key := fs.Arg(0)
	key = receiptKeyOf(key, *summary)
	objects, err := c.objects(ctx)
	if err != nil {
		return err
	}
	if _, err := objects.Download(ctx, key, "", stdout); err != nil {
		return fmt.Errorf("receipt %s: %w", key, err)
	}
	return nil
}

// receiptKeyOf is the key the receipt command prints for KEY: for an
// upload's key under any upload prefix, its receipt CSV (or summary), a
// dry run's for dryrun/ and dryrun-snapshot/; any other key as given.
func receiptKeyOf(key string, summary bool) string {
	pk := objectkey.Parse(key)
	if pk.Verdict != objectkey.OK {
		return key
	}
	rk := objectkey.ReceiptsFor(pk.Submitter, pk.Name, pk.Source.DryRun())
	if summary {
		return rk.Summary
	}
	return rk.CSV
}
