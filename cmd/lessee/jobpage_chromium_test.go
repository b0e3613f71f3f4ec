//go:build unix

package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/net/html"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// The million-row job TestJobPagesInChromium writes straight into the
// store: every tenth row rejected, with one of three codes.
const (
	millionRows  = 1_000_000
	millionJobID = "millionrowjobabcdefghijk"
	millionOrg   = "912345610"
	// A job page must answer within this, however many rows the job has;
	// a page costs two indexed queries, a few milliseconds, but the machine
	// may be busy.
	jobPageBudget = 2 * time.Second
)

// TestJobPagesInChromium shows the job list and job pages in headless
// Chromium with real data: a file with rejected rows and a refused file,
// processed by the embedded service, and a job of a million rows written
// into its database. It checks what a person reads (the rejected rows with
// their row numbers, codes and masked messages, the refusal's reason, the
// counts, paging) and keeps screenshots in $LESSEE_TEST_ARTIFACTS.
func TestJobPagesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the job pages test writes a job of a million rows")
	}
	browser := findChromium(t)
	artifacts := artifactDir(t)
	e := startService(t, defaultServeConfig())
	base := "http://" + e.svc.httpAddr
	const nordlys = "912345602"

	e.upload(t, "inbox/"+nordlys+"/all-outcomes.csv", "changes/all-outcomes.csv")
	e.upload(t, "inbox/"+nordlys+"/missing-column.csv", "changes/missing-column.csv")
	outcomes := waitSummaryStruct(t, e, nordlys, "all-outcomes.csv", 60*time.Second)
	refusal := waitSummaryStruct(t, e, nordlys, "missing-column.csv", 60*time.Second)
	if outcomes.Rejected == 0 || refusal.Status != "refused" || refusal.Code == "" {
		t.Fatalf("fixture: all-outcomes has %d rejected rows, missing-column is %s %s", outcomes.Rejected, refusal.Status, refusal.Code)
	}
	// The summary is written just before the job is marked finished.
	for _, id := range []string{outcomes.JobID, refusal.JobID} {
		waitFor(t, 30*time.Second, func() bool {
			j, err := e.svc.store.Job(context.Background(), id)
			return err == nil && (j.State == lessee.JobCompleted || j.State == lessee.JobRefused)
		})
	}
	million := writeMillionRowJob(t, e)

	t.Run("RejectedRows", func(t *testing.T) {
		page := base + "/jobs/" + outcomes.JobID
		dom := browser.dumpDOM(t, page)
		writeArtifact(t, artifacts, "job-rejected-rows.html", dom)
		checkMasked(t, page, dom)
		jp := parseJobPage(t, dom)
		// The receipt is the truth: its rejected rows, in order, with the
		// same code and message (masked) are what the page lists.
		type row struct{ line, code, message string }
		var want []row
		for _, r := range e.receiptRows(t, nordlys, "all-outcomes.csv") {
			if r[6] == "rejected" {
				want = append(want, row{r[0], r[7], ident.MaskText(strings.TrimPrefix(r[8], "'"))})
			}
		}
		var got []row
		for _, r := range jp.Rows {
			got = append(got, row{r.Line, r.Code, r.Message})
		}
		if !slices.Equal(got, want) {
			t.Errorf("page lists rejected rows\n%v\nthe receipt\n%v", got, want)
		}
		if jp.Counts["applied"] != outcomes.Applied || jp.Counts["unchanged"] != outcomes.Unchanged || jp.Counts["rejected"] != outcomes.Rejected {
			t.Errorf("page counts %v, summary %d/%d/%d", jp.Counts, outcomes.Applied, outcomes.Unchanged, outcomes.Rejected)
		}
		for code, n := range outcomes.Codes {
			if jp.Codes[code] != n {
				t.Errorf("page shows %d rows of %s, summary %d", jp.Codes[code], code, n)
			}
		}
		if len(jp.Receipts) < 2 || jp.Receipts[0] != "/api/jobs/"+outcomes.JobID+"/receipt" {
			t.Errorf("receipt links %v", jp.Receipts)
		}
		if jp.Next != "" {
			t.Errorf("a file of %d rejected rows has a next page: %s", outcomes.Rejected, jp.Next)
		}
		browser.screenshotSize(t, page, filepath.Join(artifacts, "job-rejected-rows.png"), 1400, 1300)
		browser.screenshot(t, page, filepath.Join(artifacts, "job-rejected-rows-1280.png"))
	})

	t.Run("Refused", func(t *testing.T) {
		page := base + "/jobs/" + refusal.JobID
		dom := browser.dumpDOM(t, page)
		writeArtifact(t, artifacts, "job-refused.html", dom)
		checkMasked(t, page, dom)
		jp := parseJobPage(t, dom)
		want := "Refused: " + refusal.Code + " " + strings.Join(strings.Fields(ident.MaskText(refusal.Message)), " ")
		if !strings.HasPrefix(jp.Refusal, want) {
			t.Errorf("refusal on the page %q, want it to start with %q", jp.Refusal, want)
		}
		if jp.ProgressBar {
			t.Error("a refused file shows a progress bar")
		}
		browser.screenshot(t, page, filepath.Join(artifacts, "job-refused.png"))
	})

	t.Run("MillionRows", func(t *testing.T) {
		page := base + "/jobs/" + millionJobID
		// Each page of rejected rows, the first, one deep in the file and
		// one of a code, is an indexed read: all answer within the budget.
		for _, q := range []string{"", "?after=900000", "?code=NOT_OWNER&after=990000"} {
			start := time.Now()
			res, err := http.Get(page + q)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			took := time.Since(start)
			t.Logf("GET /jobs/%s%s: %d in %s", millionJobID, q, res.StatusCode, took.Round(time.Millisecond))
			if err != nil || res.StatusCode != http.StatusOK || took > jobPageBudget {
				t.Errorf("GET %s%s: %d, %v, in %s (budget %s)", page, q, res.StatusCode, err, took, jobPageBudget)
			}
		}
		dom := browser.dumpDOM(t, page)
		writeArtifact(t, artifacts, "job-million.html", dom)
		checkMasked(t, page, dom)
		jp := parseJobPage(t, dom)
		if jp.Counts["applied"]+jp.Counts["unchanged"]+jp.Counts["rejected"] != millionRows || jp.Counts["rejected"] != million.rejected {
			t.Errorf("page counts %v, want %d rows, %d rejected", jp.Counts, millionRows, million.rejected)
		}
		if len(jp.Rows) != 100 || jp.Next == "" {
			t.Fatalf("first page: %d rows, next %q; want a page of 100 and a next page", len(jp.Rows), jp.Next)
		}
		if jp.Rows[0].Line != "5" || jp.Rows[99].Line != "995" {
			t.Errorf("first page rows %s to %s, want 5 to 995 (every tenth row from index 3)", jp.Rows[0].Line, jp.Rows[99].Line)
		}
		next, err := url.Parse(jp.Next)
		if err != nil {
			t.Fatal(err)
		}
		dom = browser.dumpDOM(t, base+next.RequestURI())
		second := parseJobPage(t, dom)
		if len(second.Rows) != 100 || second.Rows[0].Line != "1005" {
			t.Errorf("second page: %d rows from row %v", len(second.Rows), second.Rows)
		}
		browser.screenshotSize(t, page, filepath.Join(artifacts, "job-million.png"), 1400, 1300)
		browser.screenshot(t, base+next.RequestURI(), filepath.Join(artifacts, "job-million-page-2-1280.png"))
	})

	t.Run("List", func(t *testing.T) {
		page := base + "/jobs"
		dom := browser.dumpDOM(t, page)
		writeArtifact(t, artifacts, "jobs-list.html", dom)
		checkMasked(t, page, dom)
		keys := map[string]string{
			outcomes.JobID: "inbox/" + nordlys + "/all-outcomes.csv",
			refusal.JobID:  "inbox/" + nordlys + "/missing-column.csv",
			millionJobID:   "inbox/" + millionOrg + "/million.csv",
		}
		for id, key := range keys {
			j, ok := findPageJob(t, dom, key)
			if !ok {
				t.Fatalf("the list shows no row for %s", key)
			}
			if j.ID != id || j.Link != "/jobs/"+id {
				t.Errorf("row of %s links %q, want /jobs/%s", key, j.Link, id)
			}
			if j.Progress {
				t.Errorf("row of finished %s shows a progress bar", key)
			}
			if j.Reloads {
				t.Error("the list reloads itself with every job finished")
			}
		}
		refused, _ := findPageJob(t, dom, keys[refusal.JobID])
		if refused.State != "refused" || !strings.HasPrefix(refused.Message, refusal.Code+" ") {
			t.Errorf("refused row: %+v", refused)
		}
		big, _ := findPageJob(t, dom, keys[millionJobID])
		if big.RowsTotal != millionRows || big.Rejected != million.rejected {
			t.Errorf("million-row job row: %+v", big)
		}
		browser.screenshotSize(t, page, filepath.Join(artifacts, "jobs-list-1400.png"), 1400, 900)
		browser.screenshot(t, page, filepath.Join(artifacts, "jobs-list-1280.png"))

		// Filtered: only the refused file.
		filtered := page + "?state=refused"
		dom = browser.dumpDOM(t, filtered)
		if _, ok := findPageJob(t, dom, keys[outcomes.JobID]); ok {
			t.Error("state=refused lists a completed job")
		}
		if _, ok := findPageJob(t, dom, keys[refusal.JobID]); !ok {
			t.Error("state=refused does not list the refused job")
		}
		browser.screenshot(t, filtered, filepath.Join(artifacts, "jobs-list-refused-1280.png"))
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		res, err := http.Get(base + "/jobs/nosuchjob")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "There is no job with id") {
			t.Errorf("unknown job: %d %s", res.StatusCode, b)
		}
	})
}

// millionJob is what writeMillionRowJob wrote.
type millionJob struct {
	rejected int
}

// writeMillionRowJob records a finished job of a million rows in the
// service's SQLite database, its results written by one recursive INSERT
// (about a second; processing a real file of a million rows takes
// minutes). Row index i is rejected when i%10 == 3, with NOT_OWNER,
// VEHICLE_NOT_FOUND or INVALID_DATE by i%30; its message names a personal
// identity number, which the page must mask.
func writeMillionRowJob(t *testing.T, e *e2e) millionJob {
	t.Helper()
	ctx := context.Background()
	codeOf := func(i int) lessee.Code {
		switch i % 30 {
		case 3:
			return lessee.CodeNotOwner
		case 13:
			return lessee.CodeVehicleNotFound
		}
		return lessee.CodeInvalidDate
	}
	j := lessee.Job{ID: millionJobID, Bucket: e.svc.cfg.Bucket, Key: "inbox/" + millionOrg + "/million.csv", Version: "v1",
		Submitter: millionOrg, Name: "million.csv", Format: lessee.FormatCSV, Size: 64 << 20,
		RowsTotal: millionRows, RowsDone: millionRows, Codes: map[lessee.Code]int{},
		Uploaded: time.Now().Add(-4 * time.Minute).Truncate(time.Second), Started: time.Now().Add(-3 * time.Minute)}
	for i := range millionRows {
		switch {
		case i%10 == 3:
			j.Rejected++
			j.Codes[codeOf(i)]++
		case i%2 == 0:
			j.Unchanged++
		default:
			j.Applied++
		}
	}
	if _, err := e.svc.store.BeginJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("sqlite", filepath.Join(e.svc.cfg.Data, "registry.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
		INSERT INTO row_results (job_id, row_index, row_line, reference, operation, registration_number, vin, lessee,
			status, code, message, change_id)
		SELECT ?, i, i + 2, 'M-' || i, 'add', printf('MR%06d', i), '', '*********49',
			CASE WHEN i % 10 = 3 THEN 'rejected' WHEN i % 2 = 0 THEN 'unchanged' ELSE 'applied' END,
			CASE WHEN i % 10 <> 3 THEN '' WHEN i % 30 = 3 THEN ? WHEN i % 30 = 13 THEN ? ELSE ? END,
			CASE WHEN i % 10 <> 3 THEN '' ELSE 'row ' || (i + 2) || ': not decided for lessee 12128822249' END,
			''
		FROM n`, millionRows, millionJobID, string(lessee.CodeNotOwner), string(lessee.CodeVehicleNotFound), string(lessee.CodeInvalidDate))
	if err != nil {
		t.Fatalf("write a million results: %v", err)
	}
	t.Logf("wrote %d results in %s", millionRows, time.Since(start).Round(time.Millisecond))
	if err := e.svc.store.FinishJob(ctx, millionJobID, lessee.JobCompleted, "", ""); err != nil {
		t.Fatal(err)
	}
	return millionJob{rejected: j.Rejected}
}

// checkMasked fails when a page shows an unmasked 11-digit number.
func checkMasked(t *testing.T, url, dom string) {
	t.Helper()
	if m := advElevenDigits.FindStringSubmatch(dom); m != nil {
		t.Errorf("%s shows the unmasked number %s", url, m[1])
	}
}

// jobPageView is what a job page shows, as the browser rendered it.
type jobPageView struct {
	Refusal     string
	ProgressBar bool
	Counts      map[string]int // by outcome, from the legend
	Codes       map[string]int // from the code bars
	Receipts    []string       // links
	Rows        []jobPageRow   // the rejected rows of this page
	Next        string         // the next page of rejected rows
}

type jobPageRow struct {
	Line, Code, Message string
}

// parseJobPage reads a dumped job page.
func parseJobPage(t *testing.T, dom string) jobPageView {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	v := jobPageView{Counts: map[string]int{}, Codes: map[string]int{}}
	words := func(n *html.Node) string {
		var b strings.Builder
		for d := range n.Descendants() {
			if d.Type == html.TextNode {
				b.WriteString(d.Data + " ")
			}
		}
		return strings.Join(strings.Fields(b.String()), " ")
	}
	within := func(n *html.Node, id string) bool {
		for p := n.Parent; p != nil; p = p.Parent {
			if attr(p, "id") == id {
				return true
			}
		}
		return false
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		class := attr(n, "class")
		switch {
		case attr(n, "id") == "refusal":
			v.Refusal = words(n)
		case n.Data == "progress" && within(n, "progress"):
			v.ProgressBar = true
		case n.Data == "b" && class == "count" && within(n, "counts"):
			v.Counts[strings.TrimPrefix(attr(n.Parent, "class"), "status-")] = count(t, text(n))
		case n.Data == "tr" && attr(n, "data-code") != "" && within(n, "codes"):
			for td := range n.ChildNodes() {
				if attr(td, "class") == "num" {
					v.Codes[attr(n, "data-code")] = count(t, text(td))
				}
			}
		case n.Data == "a" && within(n, "receipts"):
			v.Receipts = append(v.Receipts, attr(n, "href"))
		case n.Data == "a" && attr(n, "rel") == "next" && within(n, "rejected"):
			v.Next = attr(n, "href")
		case n.Data == "tr" && class == "rejected-row":
			var r jobPageRow
			for td := range n.ChildNodes() {
				switch attr(td, "class") {
				case "num row":
					r.Line = strings.TrimSpace(text(td))
				case "code":
					r.Code = strings.TrimSpace(text(td))
				case "message":
					r.Message = strings.Join(strings.Fields(text(td)), " ")
				}
			}
			v.Rows = append(v.Rows, r)
		}
	}
	return v
}
