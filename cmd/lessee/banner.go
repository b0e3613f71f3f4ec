package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
)

// This file is the start-up banner of `lessee serve`: where everything
// listens, where data lives, and an upload that works when pasted.

// demoOrg is an organisation of the demo registry that may submit files.
type demoOrg struct {
	OrgNr, Name, Role string
}

// demoOrgs returns the demo registry's organisations that may submit,
// fleet owners first, as far as the registry in use holds them with the
// same name (a registry of one's own is not the demo).
func demoOrgs(ctx context.Context, reg interface {
	Enterprise(ctx context.Context, orgnr string) (*lessee.Enterprise, error)
}) []demoOrg {
	f, err := examples.FS().Open("registry/enterprises.csv")
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil
	}
	var owners, others []demoOrg
	now := time.Now()
	for _, rec := range recs[1:] {
		e, err := reg.Enterprise(ctx, rec[0])
		if err != nil || e.Name != rec[1] {
			continue
		}
		switch {
		case e.FleetOwner && e.Accepted(lessee.AgreementLesseeAPI, now):
			owners = append(owners, demoOrg{e.OrgNr, e.Name, "fleet owner"})
		case e.Accepted(lessee.AgreementThirdParty, now):
			others = append(others, demoOrg{e.OrgNr, e.Name, "third party"})
		}
	}
	return append(owners, others...)
}

// selfCommand is how to run this binary again from the same shell:
// "go run ./cmd/lessee" under go run, "lessee" when that is it on the
// PATH, else the path it was started by.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "lessee"
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/lessee"
	}
	if p, err := exec.LookPath("lessee"); err == nil {
		if a, err := filepath.EvalSymlinks(p); err == nil {
			if b, err := filepath.EvalSymlinks(exe); err == nil && a == b {
				return "lessee"
			}
		}
	}
	if strings.ContainsRune(os.Args[0], filepath.Separator) {
		return shellQuote(os.Args[0])
	}
	return shellQuote(exe)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exampleFile is the demo change file when serve runs in a checkout, so
// that the printed commands work as they are; else a placeholder.
func exampleFile() string {
	const f = "examples/changes/all-outcomes.csv"
	if _, err := fs.Stat(os.DirFS("."), f); err == nil {
		return f
	}
	return "FILE"
}

// banner is what `lessee serve` prints once it runs.
type banner struct {
	self      string // selfCommand()
	file      string // exampleFile()
	cfg       serveConfig
	httpAddr  string
	apiAddr   string
	sftpAddr  string
	s3        string // the S3 endpoint URL
	embedded  bool   // the S3 endpoint is the embedded one
	sqlite    bool
	access    string // the embedded endpoint's credentials
	secret    string
	demo      []demoOrg
	defaultS3 bool // --s3-listen is serve's default
}

func (b banner) print(w io.Writer) {
	var s strings.Builder
	fmt.Fprintf(&s, "lessee is running (role %s)\n", b.cfg.Role)
	fmt.Fprintf(&s, "  jobs:    http://%s/jobs   health: http://%s/healthz   queues: http://%s/monitoring/\n", b.httpAddr, b.httpAddr, b.httpAddr)
	if b.apiAddr != "" {
		fmt.Fprintf(&s, "  API:     http://%s/api/v1/changes   (token: %s token --as ORGNR)\n", b.apiAddr, b.self)
	}
	if b.sftpAddr != "" {
		fmt.Fprintf(&s, "  SFTP:    %s\n", b.sftpAddr)
	}
	if b.embedded {
		fmt.Fprintf(&s, "  S3:      %s   bucket %s   access key %s, secret key %s\n", b.s3, b.cfg.Bucket, b.access, b.secret)
	} else {
		fmt.Fprintf(&s, "  S3:      %s   bucket %s\n", b.s3, b.cfg.Bucket)
	}
	var held []string
	if b.sqlite {
		held = append(held, "SQLite registry")
	}
	if b.embedded {
		held = append(held, "S3 objects")
	}
	held = append(held, "temporary files")
	fmt.Fprintf(&s, "  data:    %s (%s)\n", b.cfg.Data, strings.Join(held, ", "))
	orgnr := "ORGNR"
	if len(b.demo) > 0 {
		var names []string
		for _, d := range b.demo {
			names = append(names, fmt.Sprintf("%s %s (%s)", d.OrgNr, d.Name, d.Role))
		}
		fmt.Fprintf(&s, "  demo organisations: %s\n", strings.Join(names, ", "))
		orgnr = b.demo[0].OrgNr
	}
	name := filepath.Base(b.file)
	if b.file == "FILE" {
		name = "FILE"
	}
	fmt.Fprintln(&s, "Upload a file, then read its receipt:")
	var where []string
	if b.embedded && !b.defaultS3 {
		where = append(where, "--s3-listen "+shellQuote(strings.TrimPrefix(b.s3, "http://")))
	}
	if !b.embedded {
		where = append(where, "--s3-endpoint "+shellQuote(b.s3))
	}
	if b.cfg.Bucket != defaultServeConfig().Bucket {
		where = append(where, "--bucket "+shellQuote(b.cfg.Bucket))
	}
	s3Flags := strings.Join(where, " ")
	if b.httpAddr != defaultServeConfig().Listen {
		where = append(where, "--listen "+b.httpAddr)
	}
	fmt.Fprintf(&s, "  %s\n", join(b.self, "submit --as", orgnr, "--wait", strings.Join(where, " "), b.file))
	fmt.Fprintf(&s, "  %s\n", join(b.self, "receipt", s3Flags, "inbox/"+orgnr+"/"+name))
	creds := "AWS_ACCESS_KEY_ID=" + shellQuote(b.access) + " AWS_SECRET_ACCESS_KEY=" + shellQuote(b.secret) + " "
	if !b.embedded {
		creds = "" // real S3: the caller's own credentials
	}
	fmt.Fprintf(&s, "  %sAWS_DEFAULT_REGION=%s aws --endpoint-url %s s3 cp %s s3://%s/inbox/%s/%s\n",
		creds, shellQuote(b.cfg.S3Region), b.s3, b.file, b.cfg.Bucket, orgnr, name)
	fmt.Fprintf(&s, "Stop with Ctrl-C: running files get up to %s to finish; a second Ctrl-C stops at once.\n", shutdownTimeout)
	_, _ = io.WriteString(w, s.String()) // the banner is informational
}

// join joins the non-empty parts with spaces.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}
