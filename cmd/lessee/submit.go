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
	Wait             bool
	Timeout          time.Duration
	Poll             time.Duration
}

func (o *submitOptions) register(fs *flag.FlagSet) {
	o.clientFlags.register(fs)
	fs.StringVar(&o.OperatorUser, "operator-user", "", "operator user for the progress API, when the service requires one")
	fs.StringVar(&o.OperatorPassword, "operator-password", "", "operator password for the progress API")
	fs.StringVar(&o.As, "as", "", "organisation number of the submitter (required)")
	fs.StringVar(&o.Name, "name", "", "object name in the inbox (default: the file's base name)")
	fs.BoolVar(&o.Wait, "wait", false, "wait for the receipt, showing progress, and print the summary")
	fs.DurationVar(&o.Timeout, "timeout", time.Hour, "how long --wait waits")
	fs.DurationVar(&o.Poll, "poll", 500*time.Millisecond, "how often --wait polls")
}

// errRefused is returned by submit --wait when the service refused the file.
var errRefused = errors.New("file refused")

func runSubmit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lessee submit --as ORGNR [--wait] FILE\n\nUploads FILE to inbox/ORGNR/ and, with --wait, shows progress until the receipt exists.\nExit status: 0 when the file was processed (even with rejected rows), 1 when it was refused or on error.")
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
	key := objectkey.InboxKey(o.As, o.Name)
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
	summary, err := waitForSummary(ctx, &o, objects, o.As, o.Name, version, jobID, o.Poll, stderr)
	if err != nil {
		return err
	}
	printSummary(stdout, summary)
	if summary.Status == "refused" {
		return fmt.Errorf("%w: %s: %s", errRefused, summary.Code, summary.Message)
	}
	return nil
}

// waitForSummary polls for the summary of this upload's version, showing
// the job's progress from the service's API while it runs.
func waitForSummary(ctx context.Context, c *submitOptions, objects *s3store.Client, submitter, name, version, jobID string,
	poll time.Duration, stderr io.Writer) (receipt.Summary, error) {
	summaryKey := objectkey.Summary(submitter, name)
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
		var buf bytes.Buffer
		if _, err := objects.Download(ctx, summaryKey, "", &buf); err == nil {
			var s receipt.Summary
			// A summary of an earlier upload with the same name may be
			// there; only this version's counts.
			if json.Unmarshal(buf.Bytes(), &s) == nil && s.Version == version {
				return s, nil
			}
		} else if lessee.ErrorCode(err) != lessee.ENOTFOUND && ctx.Err() == nil {
			fmt.Fprintf(stderr, "\rwaiting: %v\n", err)
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
	if len(s.IgnoredColumns) > 0 {
		fmt.Fprintf(w, "ignored columns: %s\n", strings.Join(s.IgnoredColumns, ", "))
	}
	fmt.Fprintf(w, "receipt:   %s\n", s.Receipt)
}

func runReceipt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lessee receipt [--summary] KEY\n\nPrints the receipt of an upload. KEY is the receipt key, or the upload's key inbox/<orgnr>/<name>.")
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
	if pk := objectkey.Parse(key); pk.Verdict == objectkey.OK {
		key = objectkey.ReceiptCSV(pk.Submitter, pk.Name)
		if *summary {
			key = objectkey.Summary(pk.Submitter, pk.Name)
		}
	}
	objects, err := c.objects(ctx)
	if err != nil {
		return err
	}
	if _, err := objects.Download(ctx, key, "", stdout); err != nil {
		return fmt.Errorf("receipt %s: %w", key, err)
	}
	return nil
}
