package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/s3store"
)

func TestSubmitSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		key     string
		summary string
	}{
		{nil, "inbox/912345602/fleet.csv", "receipts/912345602/fleet.csv.summary.json"},
		{[]string{"--snapshot"}, "snapshot/912345602/fleet.csv", "receipts/912345602/fleet.csv.summary.json"},
		{[]string{"--dry-run"}, "dryrun/912345602/fleet.csv", "receipts/912345602/fleet.csv.dryrun.summary.json"},
		{[]string{"--dry-run", "--snapshot"}, "dryrun-snapshot/912345602/fleet.csv", "receipts/912345602/fleet.csv.dryrun.summary.json"},
		{[]string{"--snapshot=true", "--dry-run=false"}, "snapshot/912345602/fleet.csv", "receipts/912345602/fleet.csv.summary.json"},
	} {
		fs := flag.NewFlagSet("submit", flag.ContinueOnError)
		var o submitOptions
		o.register(fs)
		if err := parseFlags(fs, append(tc.args, "--as", "912345602", "fleet.csv"), func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		if got := o.source().Key(o.As, "fleet.csv"); got != tc.key {
			t.Errorf("%q: key %s, want %s", tc.args, got, tc.key)
		}
		if got := objectkey.ReceiptsFor(o.As, "fleet.csv", o.DryRun).Summary; got != tc.summary {
			t.Errorf("%q: summary %s, want %s", tc.args, got, tc.summary)
		}
	}

	// Like every flag, both read their environment variable.
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	var o submitOptions
	o.register(fs)
	env := map[string]string{"LESSEE_DRY_RUN": "true", "LESSEE_SNAPSHOT": "1"}
	if err := parseFlags(fs, []string{"--as", "912345602", "f.csv"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.source() != objectkey.DryRunSnapshot {
		t.Errorf("LESSEE_DRY_RUN and LESSEE_SNAPSHOT give source %s", o.source())
	}
}

func TestReceiptKeyOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key     string
		summary bool
		want    string
	}{
		{"inbox/912345602/a.csv", false, "receipts/912345602/a.csv.receipt.csv"},
		{"inbox/912345602/a.csv", true, "receipts/912345602/a.csv.summary.json"},
		{"snapshot/912345602/a.csv", false, "receipts/912345602/a.csv.receipt.csv"},
		{"dryrun/912345602/a.csv", false, "receipts/912345602/a.csv.dryrun.receipt.csv"},
		{"dryrun/912345602/a.csv", true, "receipts/912345602/a.csv.dryrun.summary.json"},
		{"dryrun-snapshot/912345602/a.csv", false, "receipts/912345602/a.csv.dryrun.receipt.csv"},
		{"dryrun-snapshot/912345602/a.csv", true, "receipts/912345602/a.csv.dryrun.summary.json"},
		// Receipt keys, and anything else, are printed as given.
		{"receipts/912345602/a.csv.dryrun.receipt.csv", true, "receipts/912345602/a.csv.dryrun.receipt.csv"},
		{"inbox/912345603/a.csv", false, "inbox/912345603/a.csv"},
	} {
		if got := receiptKeyOf(tc.key, tc.summary); got != tc.want {
			t.Errorf("receiptKeyOf(%q, %v) = %q, want %q", tc.key, tc.summary, got, tc.want)
		}
	}
}

func TestPrintSummaryModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    receipt.Summary
		want []string
		not  []string
	}{
		{"Changes", receipt.Summary{Status: "completed", Mode: "changes", Rows: 3, Applied: 3, Receipt: "r"},
			[]string{"status:    completed\nmode:      changes\nrows:      3 (applied 3, unchanged 0, rejected 0)\n", "receipt:   r\n"},
			[]string{"operations", "dry run"}},
		{"OldServiceNoMode", receipt.Summary{Status: "completed", Receipt: "r"},
			[]string{"mode:      changes\n"}, nil},
		{"DryRun", receipt.Summary{Status: "completed", Mode: "changes", DryRun: true, Rows: 1, Applied: 1},
			[]string{"mode:      changes (dry run: nothing applied)\n"}, []string{"operations"}},
		{"Snapshot", receipt.Summary{Status: "completed", Mode: "snapshot", Rows: 9, Applied: 3, Unchanged: 5, Rejected: 1,
			Codes:      map[string]int{"DUPLICATE_VEHICLE": 1},
			Operations: map[string]int{"keep": 5, "add": 1, "replace": 0, "remove": 2}},
			[]string{"mode:      snapshot\n", "  DUPLICATE_VEHICLE            1\noperations: keep 5, add 1, replace 0, remove 2\n"}, []string{"dry run"}},
		{"XLSXBothReceipts", receipt.Summary{Status: "completed", Mode: "changes", Rows: 2, Applied: 2,
			Receipt: "receipts/912345602/f.xlsx.receipt.csv", ReceiptXLSX: "receipts/912345602/f.xlsx.receipt.xlsx"},
			[]string{"receipt:   receipts/912345602/f.xlsx.receipt.csv\nreceipt:   receipts/912345602/f.xlsx.receipt.xlsx (the same, as XLSX)\n"}, nil},
		{"RefusedNoRows", receipt.Summary{Status: "refused", Code: "MISSING_COLUMN", Message: "the file has no lessee_id column", Mode: "changes", Receipt: "r"},
			[]string{"code:      MISSING_COLUMN\nreason:    the file has no lessee_id column\nreceipt:   r\n"}, []string{"rows:"}},
		{"SnapshotDryRunRefused", receipt.Summary{Status: "refused", Code: "TOO_MANY_REMOVALS", Message: "12 of 40", Mode: "snapshot", DryRun: true,
			Operations: map[string]int{"keep": 0, "add": 0, "replace": 0, "remove": 0}},
			[]string{"status:    refused\nmode:      snapshot (dry run: nothing applied)\ncode:      TOO_MANY_REMOVALS\n",
				"operations: keep 0, add 0, replace 0, remove 0\n"}, nil},
	} {
		var buf bytes.Buffer
		printSummary(&buf, tc.s)
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, buf.String())
			}
		}
		for _, n := range tc.not {
			if strings.Contains(buf.String(), n) {
				t.Errorf("%s: output has %q:\n%s", tc.name, n, buf.String())
			}
		}
	}
}

// s3Only starts the embedded S3 endpoint alone, without a worker: the
// test plays the service's part by writing the summary itself.
func s3Only(t *testing.T) (*s3store.Client, map[string]string) {
	t.Helper()
	srv, err := s3store.NewServer(s3store.ServerConfig{Dir: t.TempDir(), Bucket: "lessee", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	objects, err := s3store.NewClient(context.Background(), s3store.Config{Endpoint: ts.URL, AccessKey: defaultAccessKey,
		SecretKey: defaultSecretKey, Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}
	// No service answers progress requests; submit waits on the summary.
	return objects, map[string]string{"LESSEE_S3_ENDPOINT": ts.URL, "LESSEE_SERVER": "http://127.0.0.1:1", "LESSEE_POLL": "20ms"}
}

// TestSubmitModesWait uploads with each flag combination and, standing in
// for the worker, writes a summary of that upload's version under the
// receipt key the service would use: submit --wait must find that one,
// print its mode and counts, and exit as for an inbox upload.
func TestSubmitModesWait(t *testing.T) {
	t.Parallel()
	objects, env := s3Only(t)
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.csv")
	if err := os.WriteFile(path, []byte("registration_number,lessee_id\nEL10001,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		key     string
		summary string
		mode    lessee.Mode
		dryRun  bool
		status  string
		want    []string
	}{
		{"Snapshot", []string{"--snapshot"}, "snapshot/912345602/snap.csv", "receipts/912345602/snap.csv.summary.json",
			lessee.ModeSnapshot, false, "completed", []string{"mode:      snapshot\n", "operations: keep 1, add 0, replace 0, remove 1\n"}},
		{"DryRun", []string{"--dry-run"}, "dryrun/912345602/dry.csv", "receipts/912345602/dry.csv.dryrun.summary.json",
			lessee.ModeChanges, true, "completed", []string{"mode:      changes (dry run: nothing applied)\n"}},
		{"DryRunSnapshotRefused", []string{"--dry-run", "--snapshot"}, "dryrun-snapshot/912345602/both.csv", "receipts/912345602/both.csv.dryrun.summary.json",
			lessee.ModeSnapshot, true, "refused", []string{"mode:      snapshot (dry run: nothing applied)\n", "code:      TOO_MANY_REMOVALS\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := filepath.Base(tc.key)
			done := make(chan struct{})
			go func() {
				defer close(done)
				// Wait for the upload, then publish a summary of its version.
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					head, err := objects.Head(ctx, tc.key)
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					job := lessee.Job{ID: "j", Key: tc.key, Version: intake.UploadOf("lessee", head).Version, State: lessee.JobCompleted,
						Mode: tc.mode, DryRun: tc.dryRun, Applied: 1, Unchanged: 1,
						Operations: map[lessee.Operation]int{lessee.OpKeep: 1, lessee.OpRemove: 1}}
					if tc.status == "refused" {
						job.State, job.Code, job.Message = lessee.JobRefused, lessee.CodeTooManyRemovals, "too many"
					}
					b, _ := receipt.NewSummary(job, time.Now(), "r").Marshal()
					// A summary under the other kind's key must not satisfy the wait.
					other := objectkey.ReceiptsFor("912345602", name, !tc.dryRun).Summary
					decoy := []byte(`{"version":"` + job.Version + `","status":"completed","mode":"elsewhere"}`)
					_ = objects.Put(ctx, other, bytes.NewReader(decoy), int64(len(decoy)), "application/json")
					if err := objects.Put(ctx, tc.summary, bytes.NewReader(b), int64(len(b)), "application/json"); err != nil {
						t.Error(err)
					}
					return
				}
				t.Error("the upload never arrived")
			}()
			var out, errOut bytes.Buffer
			args := append([]string{"submit", "--as", "912345602", "--name", name, "--wait", "--timeout", "20s"}, tc.args...)
			err := run(ctx, append(args, path), getenv, &out, &errOut)
			<-done
			if tc.status == "refused" {
				if !errors.Is(err, errRefused) {
					t.Fatalf("err = %v, want errRefused\n%s", err, out.String())
				}
			} else if err != nil {
				t.Fatalf("submit: %v\n%s%s", err, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "s3://lessee/"+tc.key+" (job ") {
				t.Errorf("output does not name the upload %s:\n%s", tc.key, out.String())
			}
			for _, w := range append(tc.want, "status:    "+tc.status+"\n") {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if _, err := objects.Head(ctx, "inbox/912345602/"+name); tc.key != "inbox/912345602/"+name && err == nil {
				t.Errorf("%s was uploaded to inbox/ too", name)
			}
		})
	}
}

// TestReceiptCommandDryRun prints a dry run's receipt and summary by the
// upload's key; the real upload's receipt beside them is not the one shown.
func TestReceiptCommandDryRun(t *testing.T) {
	t.Parallel()
	objects, env := s3Only(t)
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	for k, v := range map[string]string{
		"receipts/912345602/a.csv.receipt.csv":         "real receipt",
		"receipts/912345602/a.csv.summary.json":        `{"dry_run":false}`,
		"receipts/912345602/a.csv.dryrun.receipt.csv":  "dry-run receipt",
		"receipts/912345602/a.csv.dryrun.summary.json": `{"dry_run":true}`,
	} {
		if err := objects.Put(ctx, k, strings.NewReader(v), int64(len(v)), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inbox/912345602/a.csv"}, "real receipt"},
		{[]string{"snapshot/912345602/a.csv"}, "real receipt"},
		{[]string{"dryrun/912345602/a.csv"}, "dry-run receipt"},
		{[]string{"dryrun-snapshot/912345602/a.csv"}, "dry-run receipt"},
		{[]string{"--summary", "dryrun-snapshot/912345602/a.csv"}, `{"dry_run":true}`},
		{[]string{"receipts/912345602/a.csv.dryrun.receipt.csv"}, "dry-run receipt"},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, append([]string{"receipt"}, tc.args...), getenv, &out, &errOut); err != nil {
			t.Errorf("receipt %q: %v\n%s", tc.args, err, errOut.String())
			continue
		}
		if out.String() != tc.want {
			t.Errorf("receipt %q printed %q, want %q", tc.args, out.String(), tc.want)
		}
	}
}

// TestClientErrorsAreSentences: what a person can get wrong with a client
// command (a receipt not there yet, no service where the flags point, a
// file that does not exist) is told in a sentence that says what to
// check, without the SDK's status codes and request ids.
func TestClientErrorsAreSentences(t *testing.T) {
	t.Parallel()
	_, env := s3Only(t)
	down := freeAddr(t) // nothing listens there
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"ReceiptNotYet", []string{"receipt", "inbox/912345602/not-there.csv"}, env,
			"no receipt for inbox/912345602/not-there.csv yet: receipts/912345602/not-there.csv.receipt.csv does not exist"},
		{"ReceiptKeyNotThere", []string{"receipt", "receipts/912345602/x.receipt.csv"}, env,
			"no receipt receipts/912345602/x.receipt.csv: there is no such object"},
		{"ReceiptNoService", []string{"receipt", "inbox/912345602/a.csv"}, map[string]string{"LESSEE_S3_LISTEN": down},
			"cannot reach the S3 endpoint http://" + down + " (is 'lessee serve' running?"},
		{"StatusNoService", []string{"status", "--listen", down}, nil,
			"cannot reach the service at http://" + down + " (is 'lessee serve' running?"},
		{"SubmitNoFile", []string{"submit", "--as", "912345602", "does-not-exist.csv"}, env,
			"cannot read does-not-exist.csv: no such file or directory"},
		{"SubmitDirectory", []string{"submit", "--as", "912345602", t.TempDir()}, env, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := runMain(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &out, &errOut)
			msg := errOut.String()
			if code != 1 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line containing %q", code, msg, tc.want)
			}
			for _, dump := range []string{"StatusCode", "RequestID", "HostID", "operation error"} {
				if strings.Contains(msg, dump) {
					t.Errorf("stderr has the SDK's %q: %s", dump, msg)
				}
			}
		})
	}
}
