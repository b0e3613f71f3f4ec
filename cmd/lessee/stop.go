package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/worker"
)

// This file is what `lessee serve` says when it stops: what it waits for
// at the first interrupt, and how it ended. The worker logs the same as
// structured lines.

// stopping tells the user what the stop waits for.
func (s *service) stopping(running []worker.Running, timeout time.Duration) {
	var b strings.Builder
	if len(running) == 0 {
		b.WriteString("lessee: stopping (no file is being processed)\n")
	} else {
		fmt.Fprintf(&b, "lessee: stopping: waiting up to %s for %s to finish:\n", timeout, plural(len(running), "file"))
		for _, r := range running {
			fmt.Fprintf(&b, "  job %s  %s  %s\n", r.JobID, r.Key, rowsDone(r))
		}
		b.WriteString("  Ctrl-C again stops at once; a file cut off resumes from its last committed chunk at the next start.\n")
	}
	s.say(b.String())
}

// setCut records the files the stop cut off.
func (s *service) setCut(cut []worker.Running) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = cut
}

// stopped says how the stop ended, once everything is closed, and returns
// errStoppedNow after a second interrupt.
func (s *service) stopped() error {
	s.mu.Lock()
	cut := s.cut
	s.mu.Unlock()
	now := false
	select {
	case <-s.stopNow:
		now = true
	default:
	}
	var b strings.Builder
	switch {
	case len(cut) == 0 && !now:
		b.WriteString("lessee: stopped cleanly\n")
	case len(cut) == 0:
		b.WriteString("lessee: stopped at once; no file was cut off\n")
	default:
		how := "stopped"
		if now {
			how = "stopped at once"
		} else {
			how += " after waiting " + shutdownTimeout.String()
		}
		fmt.Fprintf(&b, "lessee: %s; %s cut off, to resume from the last committed chunk at the next start:\n", how, plural(len(cut), "file"))
		for _, r := range cut {
			fmt.Fprintf(&b, "  job %s  %s  %s\n", r.JobID, r.Key, rowsDone(r))
		}
	}
	s.say(b.String())
	s.log.Info("stopped", "clean", len(cut) == 0 && !now, "cut_off", len(cut), "at_once", now)
	if now {
		return errStoppedNow
	}
	return nil
}

// say writes a stop message in one write, masked like the log.
func (s *service) say(msg string) {
	if s.stopMessages != nil {
		_, _ = io.WriteString(s.stopMessages, ident.MaskText(msg)) // informational
	}
}

func rowsDone(r worker.Running) string {
	if r.RowsTotal == 0 {
		return "(reading the file)"
	}
	return fmt.Sprintf("%d of %d rows committed", r.RowsDone, r.RowsTotal)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// banner gathers what the start-up banner shows.
func (s *service) banner(ctx context.Context) banner {
	access, secret := s.cfg.S3AccessKey, s.cfg.S3SecretKey
	if access == "" && secret == "" {
		access, secret = defaultAccessKey, defaultSecretKey
	}
	return banner{
		self: selfCommand(), file: exampleFile(), cfg: s.cfg,
		httpAddr: s.httpAddr, apiAddr: s.apiAddr, sftpAddr: s.sftpAddr,
		s3: s.s3Endpoint, embedded: s.cfg.S3Endpoint == "", sqlite: s.cfg.DatabaseURL == "",
		access: access, secret: secret, demo: demoOrgs(ctx, s.store),
		defaultS3: s.cfg.S3Listen == defaultServeConfig().S3Listen,
	}
}
