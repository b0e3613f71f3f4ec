//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/web"
)

// Rows of the large file in TestJobPageInChromium beyond the example rows,
// and the chunk size asked of the service: enough chunks that two page
// loads a second apart see different progress.
const (
	pageTestBulkRows = 150_000
	pageTestChunk    = 200
)

// TestJobPageInChromium loads /jobs in headless Chromium while the embedded
// service processes a large file: the progress the page shows advances
// between two loads, the page reloads itself while the file runs, and once
// the file is done the counts on the page are those of the receipt
// summary. Screenshots are kept in $LESSEE_TEST_ARTIFACTS (default: a
// temporary directory, logged).
func TestJobPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skipf("-short: the Chromium job page test processes a %d-row file", pageTestBulkRows)
	}
	browser := findChromium(t)
	artifacts := artifactDir(t)
	const nordlys, name = "912345602", "large-fleet.csv"
	key := "inbox/" + nordlys + "/" + name

	cfg := defaultServeConfig()
	cfg.ChunkSize = pageTestChunk
	e := startService(t, cfg)
	if e.svc.cfg.ChunkSize != pageTestChunk {
		t.Logf("startService runs with chunk size %d, not %d; progress moves in steps of %d rows", e.svc.cfg.ChunkSize, pageTestChunk, e.svc.cfg.ChunkSize)
	}
	page, api := "http://"+e.svc.httpAddr+"/jobs", "http://"+e.svc.httpAddr+"/api/jobs"

	data := largeChangeFile(t, pageTestBulkRows)
	start := time.Now()
	if err := e.objects.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), "text/csv"); err != nil {
		t.Fatalf("upload %s: %v", key, err)
	}

	// The first load must see the file part-way: wait, through the cheap
	// JSON API, until the worker is past its first chunk.
	waitFor(t, 30*time.Second, func() bool {
		j, ok := apiJob(t, api, key)
		return ok && j.RowsDone > 0
	})
	dom := browser.dumpDOM(t, page)
	first, ok := findPageJob(t, dom, key)
	writeArtifact(t, artifacts, "jobs-running-1.html", dom)
	if !ok {
		t.Fatalf("first load shows no row for %s:\n%s", key, dom)
	}
	t.Logf("first load after %s: %s %d / %d rows", time.Since(start).Round(time.Millisecond), first.State, first.RowsDone, first.RowsTotal)
	if first.State != "running" || first.RowsDone == 0 || first.RowsDone >= first.RowsTotal {
		t.Fatalf("first load does not show the file part-way (%+v): make the file larger", first)
	}
	if want := pageTestBulkRows + examplesRows(t); first.RowsTotal != want {
		t.Errorf("page shows %d rows in total, want %d", first.RowsTotal, want)
	}
	if !first.Reloads {
		t.Error("the job list does not reload itself while the file runs (no meta refresh)")
	}
	// The screenshot shows the file part-way, and takes long enough that
	// the next load sees more rows done.
	browser.screenshot(t, page, filepath.Join(artifacts, "jobs-running.png"))

	dom = browser.dumpDOM(t, page)
	second, ok := findPageJob(t, dom, key)
	writeArtifact(t, artifacts, "jobs-running-2.html", dom)
	if !ok {
		t.Fatalf("second load shows no row for %s:\n%s", key, dom)
	}
	t.Logf("second load after %s: %s %d / %d rows", time.Since(start).Round(time.Millisecond), second.State, second.RowsDone, second.RowsTotal)
	if second.RowsDone <= first.RowsDone {
		t.Errorf("progress did not advance between two loads: %d then %d rows done", first.RowsDone, second.RowsDone)
	}

	sum := waitSummaryStruct(t, e, nordlys, name, 120*time.Second)
	t.Logf("file processed in %s: %d applied, %d unchanged, %d rejected", time.Since(start).Round(time.Millisecond), sum.Applied, sum.Unchanged, sum.Rejected)
	if sum.Status != "completed" {
		t.Fatalf("summary status %q, want completed: %+v", sum.Status, sum)
	}
	// The receipt is the truth the summary counts; check them against each
	// other first so a mismatch on the page points at the page.
	statuses := map[string]int{}
	for _, r := range e.receiptRows(t, nordlys, name) {
		statuses[r[6]]++
	}
	if statuses["applied"] != sum.Applied || statuses["unchanged"] != sum.Unchanged || statuses["rejected"] != sum.Rejected {
		t.Fatalf("receipt rows %v disagree with the summary %d/%d/%d", statuses, sum.Applied, sum.Unchanged, sum.Rejected)
	}

	// The job is finished just after the summary is written: load until
	// the page says so.
	var final pageJob
	waitFor(t, 30*time.Second, func() bool {
		dom = browser.dumpDOM(t, page)
		final, ok = findPageJob(t, dom, key)
		return ok && final.State == "completed"
	})
	writeArtifact(t, artifacts, "jobs-finished.html", dom)
	for _, c := range []struct {
		what      string
		page, sum int
	}{
		{"applied", final.Applied, sum.Applied},
		{"unchanged", final.Unchanged, sum.Unchanged},
		{"rejected", final.Rejected, sum.Rejected},
		{"rows done", final.RowsDone, sum.Rows},
		{"rows total", final.RowsTotal, sum.Rows},
	} {
		if c.page != c.sum {
			t.Errorf("page shows %d %s, the receipt summary %d", c.page, c.what, c.sum)
		}
	}
	if final.Reloads {
		t.Error("the job list still reloads itself with every job finished")
	}
	if want := fmt.Sprintf("VEHICLE_NOT_FOUND ×%d", sum.Codes["VEHICLE_NOT_FOUND"]); !strings.HasPrefix(final.Codes, want) {
		t.Errorf("top codes on the page %q, want them to start with %q", final.Codes, want)
	}
	// The page links the job's own receipt, in its history folder (the
	// link's title names the key).
	if sum.History == nil || final.Receipt != sum.History.Receipt {
		t.Errorf("page links receipt %q, the summary names %+v", final.Receipt, sum.History)
	}
	browser.screenshot(t, page, filepath.Join(artifacts, "jobs-finished.png"))
}

// pageJob is one job row of the job list, as the browser rendered it.
type pageJob struct {
	ID                           string
	State                        string
	RowsDone, RowsTotal          int
	Applied, Unchanged, Rejected int
	Codes, Receipt               string
	// Progress tells whether the row shows a progress bar, Message the
	// refusal under the file name, Link where the file name links.
	Progress      bool
	Message, Link string
	// Reloads tells that the page reloads itself (a meta refresh).
	Reloads bool
}

// findPageJob finds the row of the job for key in a dumped DOM of the job
// list; the file cell's title is the key.
func findPageJob(t *testing.T, dom, key string) (pageJob, bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	var j pageJob
	found := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "meta" && attr(n, "http-equiv") == "refresh" {
			j.Reloads = true
		}
		if n.Data != "tr" || attr(n, "data-id") == "" || found {
			continue
		}
		// The row's elements by class, the first of each.
		el := map[string]*html.Node{}
		for d := range n.Descendants() {
			if d.Type != html.ElementNode {
				continue
			}
			for _, c := range strings.Fields(attr(d, "class")) {
				if el[c] == nil {
					el[c] = d
				}
			}
			if d.Data == "progress" {
				j.Progress = true
			}
		}
		if el["file"] == nil || attr(el["file"], "title") != key {
			j.Progress = false
			continue
		}
		found = true
		num := func(cls string) int {
			if el[cls] == nil {
				t.Fatalf("job row has no %s cell", cls)
			}
			return count(t, text(el[cls]))
		}
		j.ID = attr(n, "data-id")
		j.State = strings.TrimSpace(text(el["state"]))
		j.Applied, j.Unchanged, j.Rejected = num("applied"), num("unchanged"), num("rejected")
		j.Codes = strings.ReplaceAll(strings.TrimSpace(text(el["codes"])), "\u202f", "")
		if el["message"] != nil {
			j.Message = strings.Join(strings.Fields(text(el["message"])), " ")
		}
		if el["name"] != nil {
			j.Link = attr(el["name"], "href")
		}
		if el["receipt"] != nil {
			for a := range el["receipt"].Descendants() {
				if a.Type == html.ElementNode && a.Data == "a" {
					j.Receipt = attr(a, "title") // the first link: the receipt CSV
					break
				}
			}
		}
		if s := el["rows"]; s != nil {
			done, total, ok := strings.Cut(text(s), " / ")
			if !ok {
				t.Fatalf("rows %q are not 'done / total'", text(s))
			}
			j.RowsDone, j.RowsTotal = count(t, done), count(t, total)
		}
	}
	return j, found
}

// count reads a number the pages write with thin spaces between thousands.
func count(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), "\u202f", ""))
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// largeChangeFile is the all-outcomes example (every outcome, some rows
// applied) followed by bulk rows for vehicles the registry does not have.
// Bulk lessees are organisations: no personal identity numbers.
func largeChangeFile(t *testing.T, bulk int) []byte {
	t.Helper()
	b, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + bulk*64)
	buf.Write(b)
	if !bytes.HasSuffix(b, []byte("\n")) {
		buf.WriteByte('\n')
	}
	for i := range bulk {
		fmt.Fprintf(&buf, "add,X%06d,,912345688,Kontorbygg AS,2026-02-01,,,BULK-%06d\n", i, i)
	}
	return buf.Bytes()
}

// examplesRows is the number of data rows of the all-outcomes example.
func examplesRows(t *testing.T) int {
	t.Helper()
	b, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Split(strings.TrimSpace(string(b)), "\n")) - 1
}

// apiJob returns the job for key from the JSON job list.
func apiJob(t *testing.T, url, key string) (web.JobView, bool) {
	t.Helper()
	var jobs []web.JobView
	if err := json.Unmarshal(webGet(t, url), &jobs); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	for _, j := range jobs {
		if j.Key == key {
			return j, true
		}
	}
	return web.JobView{}, false
}

// waitSummaryStruct waits up to timeout for the summary of a file.
func waitSummaryStruct(t *testing.T, e *e2e, submitter, name string, timeout time.Duration) receipt.Summary {
	t.Helper()
	key := objectkey.Summary(submitter, name)
	var buf bytes.Buffer
	waitFor(t, timeout, func() bool {
		buf.Reset()
		_, err := e.objects.Download(context.Background(), key, "", &buf)
		return err == nil
	})
	var s receipt.Summary
	if err := json.Unmarshal(buf.Bytes(), &s); err != nil {
		t.Fatalf("summary %s: %v", key, err)
	}
	return s
}

// chromium runs Debian's Chromium headless, one process per page load.
type chromium struct {
	path string
}

// findChromium returns the browser, or skips the test, visibly, when it
// is not installed; LESSEE_REQUIRE_CHROMIUM=1 turns the skip into a failure.
func findChromium(t *testing.T) chromium {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return chromium{path: p}
		}
	}
	msg := "Chromium not found: the job page browser test needs Debian's chromium (apt-get install -y chromium)"
	if os.Getenv("LESSEE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg + "; LESSEE_REQUIRE_CHROMIUM=1 makes that a failure")
	}
	t.Skip(msg)
	return chromium{}
}

// run starts Chromium with args after the flags that keep it off the
// network and out of the user's profile, and returns its standard output.
func (c chromium) run(t *testing.T, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	flags := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(home, "profile"),
		// The pages have no script; a short virtual-time budget lets the
		// page settle and ends before its meta refresh (3 s) reloads it.
		"--virtual-time-budget=1000",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, append(flags, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	// Chromium forks helpers; kill the whole group if it hangs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out)", err)
		}
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// dumpDOM returns the page's DOM as the browser built it.
func (c chromium) dumpDOM(t *testing.T, url string) string {
	t.Helper()
	dom := c.run(t, "--dump-dom", url)
	if !bytes.Contains(dom, []byte("<table")) {
		t.Fatalf("chromium dumped no table for %s:\n%s", url, dom)
	}
	return string(dom)
}

// screenshot writes a PNG of the page, as a 1280×800 window shows it, to
// path and checks that it is one; see screenshotSize.
func (c chromium) screenshot(t *testing.T, url, path string) {
	t.Helper()
	c.screenshotSize(t, url, path, 1280, 800)
}

// screenshotSize writes a PNG of the page in a width×height window to path
// and checks that it is one: a decodable image of that size with more than
// a blank page on it.
func (c chromium) screenshotSize(t *testing.T, url, path string, width, height int) {
	t.Helper()
	c.run(t, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", url)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	if r := img.Bounds(); r.Dx() != width || r.Dy() != height {
		t.Errorf("screenshot is %dx%d, want %dx%d", r.Dx(), r.Dy(), width, height)
	}
	// Text and table rules make many pixels differ from the white page.
	inked := 0
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr < 0xf000 || cg < 0xf000 || cb < 0xf000 {
				inked++
			}
		}
	}
	if len(b) < 10_000 || inked < 2_000 {
		t.Errorf("screenshot %s looks blank: %d bytes, %d non-white pixels", path, len(b), inked)
	}
	t.Logf("screenshot %s: %d bytes, %d non-white pixels", path, len(b), inked)
}

// artifactDir is $LESSEE_TEST_ARTIFACTS, created if needed, or a temporary
// directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LESSEE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("LESSEE_TEST_ARTIFACTS: %v", err)
	}
	t.Logf("test artifacts (screenshots, page DOMs) in %s", dir)
	return dir
}

func writeArtifact(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatalf("write artifact: %v", err)
	}
}
