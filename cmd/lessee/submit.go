package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/schollz/progressbar/v3"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/s3store"
)

// clientFlags are the flags of commands that talk to a running service as
// a client. They are serve's own flags, so that the settings (and
// LESSEE_* variables) that told serve where to listen tell the client
// where to connect: --s3-listen, or --s3-endpoint for S3 or MinIO, and
// --listen for its HTTP side.
type clientFlags struct {
	S3Endpoint string
	S3Listen   string
	AccessKey  string
	SecretKey  string
	Region     string
	Bucket     string
	// The HTTP side, for commands that use it (withHTTP).
	Listen           string
	Server           string
	OperatorUser     string
	OperatorPassword string
}

// registerS3 defines the flags of the service's S3 endpoint.
func (c *clientFlags) registerS3(fs *flag.FlagSet) {
	def := defaultServeConfig()
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 or MinIO endpoint URL the service uses; empty means the embedded endpoint on --s3-listen")
	fs.StringVar(&c.S3Listen, "s3-listen", def.S3Listen, "address of the service's embedded S3 endpoint (as given to serve)")
	fs.StringVar(&c.AccessKey, "s3-access-key", "", "S3 access key (embedded default: "+defaultAccessKey+")")
	fs.StringVar(&c.SecretKey, "s3-secret-key", "", "S3 secret key (embedded default: "+defaultSecretKey+")")
	fs.StringVar(&c.Region, "s3-region", def.S3Region, "S3 region")
	fs.StringVar(&c.Bucket, "bucket", def.Bucket, "S3 bucket")
}

// registerHTTP defines the flags of the service's HTTP side.
func (c *clientFlags) registerHTTP(fs *flag.FlagSet) {
	def := defaultServeConfig()
	fs.StringVar(&c.Listen, "listen", def.Listen, "HTTP address of the service (as given to serve)")
	fs.StringVar(&c.Server, "server", "", "URL of the service's HTTP side when it is not http://<--listen>, e.g. behind a proxy")
	fs.StringVar(&c.OperatorUser, "operator-user", "", "operator user, when the service requires one")
	fs.StringVar(&c.OperatorPassword, "operator-password", "", "operator password of --operator-user")
}

// s3URL is the S3 endpoint the flags name.
func (c *clientFlags) s3URL() string {
	if c.S3Endpoint != "" {
		return c.S3Endpoint
	}
	return "http://" + c.S3Listen
}

// serverURL is the service's HTTP side the flags name.
func (c *clientFlags) serverURL() string {
	if c.Server != "" {
		return strings.TrimSuffix(c.Server, "/")
	}
	return "http://" + c.Listen
}

// credentials are the S3 keys, the embedded endpoint's when none are
// given.
func (c *clientFlags) credentials() (access, secret string) {
	if c.AccessKey == "" && c.SecretKey == "" {
		return defaultAccessKey, defaultSecretKey
	}
	return c.AccessKey, c.SecretKey
}

func (c *clientFlags) objects(ctx context.Context) (*s3store.Client, error) {
	access, secret := c.credentials()
	objects, err := s3store.NewClient(ctx, s3store.Config{
		Endpoint: c.s3URL(), Region: c.Region, AccessKey: access, SecretKey: secret, Bucket: c.Bucket,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", c.s3URL(), err)
	}
	return objects, nil
}

// get asks the service's HTTP side for path and returns the answer to a
// 200, or an error that says what went wrong in the user's terms.
func (c *clientFlags) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.serverURL()+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", c.Server, err)
	}
	if c.OperatorUser != "" {
		req.SetBasicAuth(c.OperatorUser, c.OperatorPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the service at %s did not answer in time", c.serverURL())
		}
		return nil, fmt.Errorf("cannot reach the service at %s (is 'lessee serve' running? --listen or LESSEE_LISTEN names where): %w", c.serverURL(), netCause(err))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, nil
	case http.StatusUnauthorized:
		resp.Body.Close()
		if c.OperatorUser == "" {
			return nil, fmt.Errorf("the service at %s wants an operator login: give --operator-user and --operator-password", c.serverURL())
		}
		return nil, fmt.Errorf("the service at %s refused --operator-user %q and its password", c.serverURL(), c.OperatorUser)
	}
	resp.Body.Close()
	return nil, fmt.Errorf("the service at %s answered %s to %s", c.serverURL(), resp.Status, path)
}

// s3Error turns an error of the S3 endpoint into a sentence: where it is
// and what to check, with the SDK's request ids left out.
func (c *clientFlags) s3Error(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("cannot reach the S3 endpoint %s (is 'lessee serve' running? --s3-listen or LESSEE_S3_LISTEN names where, --s3-endpoint another S3): %w", c.s3URL(), netCause(err))
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden":
			return fmt.Errorf("the S3 endpoint %s refused the credentials (--s3-access-key, --s3-secret-key): %s", c.s3URL(), api.ErrorCode())
		case "NoSuchBucket":
			return fmt.Errorf("the S3 endpoint %s has no bucket %q (--bucket)", c.s3URL(), c.Bucket)
		}
		msg := api.ErrorMessage()
		if msg == "" {
			msg = api.ErrorCode()
		}
		return fmt.Errorf("the S3 endpoint %s answered: %s", c.s3URL(), msg)
	}
	return err
}

// netCause is the innermost network error: "connection refused" rather
// than the request that met it.
func netCause(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	return err
}

// submitOptions are the flags of lessee submit.
type submitOptions struct {
	clientFlags
	As       string
	Name     string
	DryRun   bool
	Snapshot bool
	Wait     bool
	Timeout  time.Duration
	Poll     time.Duration
}

func (o *submitOptions) register(fs *flag.FlagSet) {
	o.registerS3(fs)
	o.registerHTTP(fs)
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

const submitHelp = `Uploads FILE (CSV or XLSX) to inbox/ORGNR/ and, with --wait, shows progress
until the receipt exists, then prints the summary. --snapshot uploads to
snapshot/ORGNR/ (FILE is the whole desired lessee state of one fleet);
--dry-run to dryrun/ORGNR/, and both together to dryrun-snapshot/ORGNR/: the
receipt tells what the file would do, nothing is applied, and it is written as
<name>.dryrun.receipt.csv beside the real receipts, which it never replaces.
The service is found as serve was told: --s3-listen (or --s3-endpoint) and
--listen, or their LESSEE_* variables.

Exit status: 0 when the file was processed (even with rejected rows), 1 when it
was refused or on error, 2 on a usage error.

Examples:
  lessee submit --as 912345602 --wait examples/changes/all-outcomes.csv
  lessee submit --as 912345602 --snapshot --dry-run --wait examples/snapshot/fleet.csv
  LESSEE_S3_LISTEN=127.0.0.1:9100 lessee submit --as 912345602 fleet.xlsx`

func runSubmit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("submit", "lessee submit --as ORGNR [--wait] [--snapshot] [--dry-run] [flags] FILE", submitHelp, stdout)
	var o submitOptions
	o.register(cmd.fs)
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if o.As == "" {
		return cmd.usageErr("missing --as ORGNR: the organisation number the file is submitted as")
	}
	pos, err := cmd.args("FILE")
	if err != nil {
		return err
	}
	if err := cmd.checkFlags(positive("timeout", o.Timeout), positive("poll", o.Poll)); err != nil {
		return err
	}
	if err := ident.OrgNr(o.As); err != nil {
		return cmd.usageErr("--as %q: %v", o.As, err)
	}
	path := pos[0]
	if st, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	} else if st.IsDir() {
		return fmt.Errorf("%s is a directory; give the change file to upload", path)
	}
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
		return fmt.Errorf("upload %s: %w", path, o.s3Error(err))
	}
	head, err := objects.Head(ctx, key)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, o.s3Error(err))
	}
	// The service names the upload from the same HEAD or listing, so this
	// is the job it will run.
	upload := intake.UploadOf(o.Bucket, head)
	version, jobID := upload.Version, intake.JobID(upload.Bucket, upload.Key, upload.Version)
	fmt.Fprintf(stdout, "uploaded %s to s3://%s/%s (job %s)\n", path, o.Bucket, key, jobID)
	if !o.Wait {
		fmt.Fprintf(stdout, "its receipt, once processed: lessee receipt %s\n", key)
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// The job's own summary in its history folder, or the latest one when
	// it is this version's: by the time this job ends the latest keys may
	// show a newer upload under the same name.
	summaryKeys := []string{objectkey.HistoryFor(o.As, jobID, o.Name, o.DryRun).Summary, objectkey.ReceiptsFor(o.As, o.Name, o.DryRun).Summary}
	summary, err := waitForSummary(ctx, &o, objects, summaryKeys, version, jobID, o.Poll, stderr)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no receipt within --timeout %s; the file is uploaded and will be processed: 'lessee receipt %s' shows its receipt then", o.Timeout, key)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("stopped waiting; the file is uploaded and will be processed: 'lessee receipt %s' shows its receipt then", key)
	case err != nil:
		return err
	}
	printSummary(stdout, summary)
	if summary.Status == "refused" {
		return fmt.Errorf("%w: %s: %s", errRefused, summary.Code, summary.Message)
	}
	return nil
}

// unwrapPath drops the *fs.PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
				fmt.Fprintf(stderr, "\rwaiting: %v\n", c.s3Error(err))
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
	resp, err := c.get(ctx, "/api/jobs/"+jobID)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
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
		fmt.Fprintf(w, "code:      %s\nreason:    %s\n", s.Code, s.Message)
	}
	// A refused file's rows were not processed: its counts say nothing.
	if s.Status != "refused" || s.Rows > 0 {
		fmt.Fprintf(w, "rows:      %d (applied %d, unchanged %d, rejected %d)\n", s.Rows, s.Applied, s.Unchanged, s.Rejected)
	}
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
	if s.ReceiptXLSX != "" {
		fmt.Fprintf(w, "receipt:   %s (the same, as XLSX)\n", s.ReceiptXLSX)
	}
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

const receiptHelp = `Prints the receipt of an upload. KEY is the receipt key, or the upload's key
inbox/<orgnr>/<name>, snapshot/<orgnr>/<name>, dryrun/<orgnr>/<name> or
dryrun-snapshot/<orgnr>/<name> (a dry run's is <name>.dryrun.receipt.csv).
The S3 endpoint is found as serve was told: --s3-listen (or --s3-endpoint),
or their LESSEE_* variables.

Examples:
  lessee receipt inbox/912345602/all-outcomes.csv
  lessee receipt --summary dryrun-snapshot/912345602/fleet.csv
  lessee receipt receipts/912345602/fleet.xlsx.receipt.xlsx > receipt.xlsx`

func runReceipt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("receipt", "lessee receipt [--summary] [flags] KEY", receiptHelp, stdout)
	var c clientFlags
	c.registerS3(cmd.fs)
	summary := cmd.fs.Bool("summary", false, "print the summary JSON instead of the receipt CSV")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	pos, err := cmd.args("KEY")
	if err != nil {
		return err
	}
	key := receiptKeyOf(pos[0], *summary)
	objects, err := c.objects(ctx)
	if err != nil {
		return err
	}
	if _, err := objects.Download(ctx, key, "", stdout); err != nil {
		if lessee.ErrorCode(err) == lessee.ENOTFOUND {
			if key == pos[0] {
				return fmt.Errorf("no receipt %s: there is no such object (an upload's key, inbox/<orgnr>/<name>, finds its receipt)", key)
			}
			return fmt.Errorf("no receipt for %s yet: %s does not exist (the file may still be in the queue; 'lessee status' lists the jobs)", pos[0], key)
		}
		return fmt.Errorf("receipt %s: %w", key, c.s3Error(err))
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
