package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBannerCommandsWork starts the real binary as a first-time user would,
// in a checkout (the examples beside it) with a fresh --data directory and
// nothing else configured, and runs the commands its banner prints exactly
// as printed, in a shell with no LESSEE_* or AWS_* variables: the AWS CLI
// upload (skipped, visibly, without the AWS CLI), `lessee receipt`, and
// `lessee submit`. It also checks that the banner names the demo
// organisations, /healthz (which answers) and where the data lives.
func TestBannerCommandsWork(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped with -short")
	}
	bin := buildLessee(t)
	work := t.TempDir()
	example, err := os.ReadFile("../../examples/changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "examples", "changes"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "examples", "changes", "all-outcomes.csv"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}

	listen, s3Listen := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve", "--data", "./lessee-data", "--listen", listen, "--s3-listen", s3Listen, "--api-listen", "127.0.0.1:0")
	cmd.Dir, cmd.Env = work, env
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	bannerc := make(chan string, 1)
	var rest lockedBuffer
	var wg sync.WaitGroup
	wg.Go(func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
				bannerc <- b.String()
				break
			}
		}
		_, _ = io.Copy(&rest, stdout)
	})
	go func() { wg.Wait(); exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	var banner string
	select {
	case banner = <-bannerc:
	case err := <-exited:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner within 60 s\n%s", logs.String())
	}
	t.Logf("banner:\n%s", banner)
	if n := strings.Count(banner, "\n"); n > 14 {
		t.Errorf("the banner has %d lines; keep it short", n)
	}

	for _, want := range []string{
		"  health: http://" + listen + "/healthz",
		"  data:    ./lessee-data (SQLite registry, S3 objects, temporary files)\n",
		"  demo organisations: 912345602 Nordlys Leasing AS (fleet owner), ",
		"912345629 Flåtepartner AS (third party)",
		"access key lessee, secret key lessee-secret",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(work, "lessee-data", "registry.db")); err != nil || st.IsDir() {
		t.Errorf("the data directory the banner names holds no registry: %v", err)
	}
	resp, err := http.Get("http://" + listen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s", resp.Status)
	}

	// The commands as printed.
	line := func(prefix string) string {
		t.Helper()
		for _, l := range strings.Split(banner, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return strings.TrimSpace(l)
			}
		}
		t.Fatalf("the banner has no line starting %q", prefix)
		return ""
	}
	sh := func(t *testing.T, command string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "sh", "-c", command)
		c.Dir, c.Env = work, env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	submit := line(bin + " submit ")
	receipt := line(bin + " receipt ")
	upload := line("AWS_ACCESS_KEY_ID=lessee AWS_SECRET_ACCESS_KEY=lessee-secret ")
	for _, want := range []string{"--s3-listen " + s3Listen, "--listen " + listen, "--as 912345602", "examples/changes/all-outcomes.csv"} {
		if !strings.Contains(submit, want) {
			t.Errorf("the submit command %q lacks %q", submit, want)
		}
	}

	t.Run("AWSCLI", func(t *testing.T) {
		if _, err := exec.LookPath("aws"); err != nil {
			t.Skip("aws CLI not installed: the banner's AWS CLI upload is not run (the lessee submit one is)")
		}
		if out, err := sh(t, upload); err != nil {
			t.Fatalf("%s: %v\n%s", upload, err, out)
		}
		// The receipt command as printed, once the file is processed.
		var out string
		if !poll(time.Minute, 200*time.Millisecond, func() bool { out, err = sh(t, receipt); return err == nil }) {
			t.Fatalf("%s: no receipt within a minute: %v\n%s", receipt, err, out)
		}
		if !strings.HasPrefix(out, "\ufeffrow,reference,operation") || strings.Count(out, "\n") != 23 {
			t.Errorf("%s printed:\n%s", receipt, out)
		}
	})

	t.Run("Submit", func(t *testing.T) {
		out, err := sh(t, submit)
		if err != nil {
			t.Fatalf("%s: %v\n%s", submit, err, out)
		}
		t.Logf("%s\n%s", submit, out)
		for _, want := range []string{"status:    completed", "rows:      22 (applied ", "receipt:   receipts/912345602/all-outcomes.csv.receipt.csv"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s printed no %q:\n%s", submit, want, out)
			}
		}
		if out, err := sh(t, receipt); err != nil || !bytes.HasPrefix([]byte(out), []byte("\ufeffrow,")) {
			t.Errorf("%s: %v\n%s", receipt, err, out)
		}
	})
}
