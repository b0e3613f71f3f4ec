package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// A personal identity number the fixture puts in messages and echoed
// cells; no page may show it.
const fixturePerson = "01017012345"

// pageFixture is a store with the jobs the job page tests look at.
type pageFixture struct {
	store *sqlstore.Store
	// Job ids.
	done, running, refused, xlsx string
	// The rows of done the store holds as rejected, by code, in row
	// order (the file's row numbers).
	rejected map[lessee.Code][]int
	allLines []int
}

// Rows of the completed fixture job: every row whose index is divisible by
// 3 is rejected, by 5 too INVALID_VIN, else VEHICLE_NOT_FOUND; the others
// are unchanged (an applied row needs registry changes, and the page only
// counts them). 330 rows give 110 rejected, more than one page.
const pageFixtureRows = 330

// newPageFixture writes, through the store's own chunk transaction, a
// completed job with rejected rows, a running one half done, a refused one
// and a completed XLSX upload with its receipts in its history folder.
func newPageFixture(t *testing.T, store *sqlstore.Store) pageFixture {
	t.Helper()
	ctx := context.Background()
	f := pageFixture{store: store, done: "eeeeeeeeeeeeeeeeeeeeeee1", running: "eeeeeeeeeeeeeeeeeeeeeee2",
		refused: "eeeeeeeeeeeeeeeeeeeeeee3", xlsx: "eeeeeeeeeeeeeeeeeeeeeee4", rejected: map[lessee.Code][]int{}}
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	begin := func(j lessee.Job) {
		t.Helper()
		j.Bucket, j.Version, j.Format = testBucket, "v1", cmp.Or(j.Format, lessee.FormatCSV)
		if _, err := store.BeginJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if err := store.UpdateJobInfo(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	begin(lessee.Job{ID: f.done, Key: "inbox/912345602/fleet " + fixturePerson + ".csv", Submitter: "912345602",
		Name: "fleet " + fixturePerson + ".csv", Size: 20_000, RowsTotal: pageFixtureRows,
		Uploaded: base.Add(-90 * time.Second), Started: base})
	var outcomes []lessee.Outcome
	for i := range pageFixtureRows {
		o := lessee.Outcome{Result: lessee.Result{Index: i, Line: i + 2, Echo: lessee.Echo{
			Reference: fmt.Sprintf("ref-%d", i), Operation: "add", RegistrationNumber: fmt.Sprintf("EL%05d", i),
			VIN: fmt.Sprintf("WVWZZZ1JZXW%06d", i), Lessee: "*********45"}}}
		switch {
		case i%3 == 0:
			o.Status, o.Code = lessee.StatusRejected, lessee.CodeVehicleNotFound
			if i%5 == 0 {
				o.Code = lessee.CodeInvalidVIN
			}
			// The message carries the lessee's number, as a careless
			// message might: the page must mask it.
			o.Message = fmt.Sprintf("row %d: %s for lessee %s", i+2, o.Code, fixturePerson)
			f.rejected[o.Code] = append(f.rejected[o.Code], i+2)
			f.allLines = append(f.allLines, i+2)
		default:
			o.Status = lessee.StatusUnchanged
		}
		outcomes = append(outcomes, o)
	}
	if err := store.ApplyChunk(ctx, f.done, 0, lessee.Keys{}, func(*lessee.State) lessee.Decision {
		return lessee.Decision{Outcomes: slices.Clone(outcomes)}
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishJob(ctx, f.done, lessee.JobCompleted, "", ""); err != nil {
		t.Fatal(err)
	}

	begin(lessee.Job{ID: f.running, Key: "inbox/912345629/big.csv", Submitter: "912345629", Name: "big.csv",
		Size: 50 << 20, RowsTotal: 1000, RowsDone: 250, Applied: 250, Started: base.Add(time.Hour)})
	begin(lessee.Job{ID: f.refused, Key: "inbox/912345637/no-lessee.csv", Submitter: "912345637", Name: "no-lessee.csv",
		Size: 10, Started: base.Add(70 * time.Minute)})
	if err := store.FinishJob(ctx, f.refused, lessee.JobRefused, lessee.CodeMissingColumn,
		"the column lessee_id is missing (the header names "+fixturePerson+")"); err != nil {
		t.Fatal(err)
	}
	begin(lessee.Job{ID: f.xlsx, Key: "inbox/912345602/fleet.xlsx", Submitter: "912345602", Name: "fleet.xlsx",
		Format: lessee.FormatXLSX, Size: 9000, RowsTotal: 0, Started: base.Add(80 * time.Minute)})
	attempt, err := store.ClaimAttempt(ctx, f.xlsx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.FenceAttempt(ctx, f.xlsx, attempt, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishJob(ctx, f.xlsx, lessee.JobCompleted, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := store.SetHistory(ctx, f.xlsx, "receipts/912345602/history/"+f.xlsx+"/"); err != nil {
		t.Fatal(err)
	}
	return f
}

// get serves a GET and parses the HTML answer.
func getPage(t *testing.T, mux http.Handler, path string) (int, *html.Node, string) {
	t.Helper()
	rec := serve(t, mux, http.MethodGet, path, "", nil)
	body := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("GET %s: Content-Type %q: %s", path, ct, body)
	}
	assertNoStore(t, rec.Header())
	assertPageCSP(t, rec.Header())
	if strings.Contains(body, fixturePerson) {
		t.Errorf("GET %s shows the identity number %s", path, fixturePerson)
	}
	if strings.Contains(body, "<script") {
		t.Errorf("GET %s has a script", path)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return rec.Code, doc, body
}

// byID returns the element with id, or nil.
func byID(doc *html.Node, id string) *html.Node {
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && attrOf(n, "id") == id {
			return n
		}
	}
	return nil
}

// all returns the elements below n with tag and, when class is set, that
// class.
func all(n *html.Node, tag, class string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag && (class == "" || slices.Contains(strings.Fields(attrOf(d, "class")), class)) {
			out = append(out, d)
		}
	}
	return out
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text below n, one space between words and between
// elements (the pages set cells and blocks apart by layout, not spaces).
func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data + " ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// number reads a count the page writes with thin spaces.
func number(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), "\u202f", ""))
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}

// pageRow is a rejected row as the page shows it.
type pageRow struct {
	line          int
	code, message string
	lessee        string
}

// rejectedOnPage returns the page's rejected rows and its Next link.
func rejectedOnPage(t *testing.T, doc *html.Node) ([]pageRow, string) {
	t.Helper()
	sec := byID(doc, "rejected")
	if sec == nil {
		t.Fatal("page has no rejected rows section")
	}
	var rows []pageRow
	for _, tr := range all(sec, "tr", "rejected-row") {
		r := pageRow{}
		for _, td := range all(tr, "td", "") {
			switch attrOf(td, "class") {
			case "num row":
				r.line = number(t, textOf(td))
			case "code":
				r.code = textOf(td)
			case "message":
				r.message = textOf(td)
			case "lessee mono":
				r.lessee = textOf(td)
			}
		}
		rows = append(rows, r)
	}
	next := ""
	for _, a := range all(sec, "a", "") {
		if attrOf(a, "rel") == "next" {
			next = attrOf(a, "href")
		}
	}
	return rows, next
}

func TestJobPage(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		f := newPageFixture(t, store)
		objects := memObjects{
			"receipts/912345602/history/" + f.xlsx + "/fleet.xlsx.receipt.csv":  []byte("csv receipt"),
			"receipts/912345602/history/" + f.xlsx + "/fleet.xlsx.receipt.xlsx": []byte("PK xlsx receipt"),
			"receipts/912345602/history/" + f.xlsx + "/fleet.xlsx.summary.json": []byte(`{"job_id":"` + f.xlsx + `"}`),
		}
		mux := http.NewServeMux()
		New(Config{Bucket: testBucket}, store, objects, nil, nil, nil).Routes(mux)

		t.Run("Completed", func(t *testing.T) {
			status, doc, body := getPage(t, mux, "/jobs/"+f.done)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if h1 := textOf(all(doc, "h1", "")[0]); h1 != "fleet *********45.csv" {
				t.Errorf("heading %q, want the masked file name", h1)
			}
			if strings.Contains(body, `http-equiv="refresh"`) {
				t.Error("a finished job's page reloads itself")
			}
			if byID(doc, "refusal") != nil {
				t.Error("a completed job shows a refusal")
			}
			if got := textOf(byID(doc, "progress")); got != "completed 330 / 330 rows" {
				t.Errorf("progress %q", got)
			}
			// Counts by outcome: the legend's numbers and the stacked bar.
			counts := map[string]int{}
			for _, sp := range all(byID(doc, "counts"), "b", "count") {
				counts[attrOf(sp.Parent, "class")] = number(t, textOf(sp))
			}
			want := map[string]int{"status-applied": 0, "status-unchanged": 220, "status-rejected": 110}
			for k, n := range want {
				if counts[k] != n {
					t.Errorf("counts %v, want %v", counts, want)
					break
				}
			}
			rects := all(byID(doc, "counts"), "rect", "")
			if len(rects) != 2 || attrOf(rects[0], "class") != "unchanged" || attrOf(rects[1], "class") != "rejected" {
				t.Fatalf("stacked bar has %d segments", len(rects))
			}
			if w, _ := strconv.ParseFloat(attrOf(rects[1], "width"), 64); w < 33 || w > 34 {
				t.Errorf("rejected segment is %s wide, want a third", attrOf(rects[1], "width"))
			}
			// Codes: one bar each, the largest full width, linking its rows.
			codes := all(byID(doc, "codes"), "tr", "")
			if len(codes) != 2 || attrOf(codes[0], "data-code") != "VEHICLE_NOT_FOUND" || attrOf(codes[1], "data-code") != "INVALID_VIN" {
				t.Fatalf("code bars %v", textOf(byID(doc, "codes")))
			}
			if got := textOf(codes[0]); got != fmt.Sprintf("VEHICLE_NOT_FOUND %d", len(f.rejected[lessee.CodeVehicleNotFound])) {
				t.Errorf("code row %q", got)
			}
			if w := attrOf(all(codes[0], "rect", "")[0], "width"); w != "100" {
				t.Errorf("largest code bar is %s wide", w)
			}
			if href := attrOf(all(codes[1], "a", "")[0], "href"); href != "/jobs/"+f.done+"?code=INVALID_VIN#rejected" {
				t.Errorf("code links %q", href)
			}
			// Timings: upload, start, finish, and the wait between.
			tim := textOf(byID(doc, "timings"))
			for _, want := range []string{"Uploaded", "Started", "after 1 min 30 s in the queue", "Finished", "ran ", "Upload to receipt"} {
				if !strings.Contains(tim, want) {
					t.Errorf("timings %q lack %q", tim, want)
				}
			}
			// Receipts: the latest keys of its name (no history folder).
			rc := textOf(byID(doc, "receipts"))
			if !strings.Contains(rc, "Receipt CSV receipts/912345602/fleet *********45.csv.receipt.csv") || strings.Contains(rc, "XLSX") {
				t.Errorf("receipts %q", rc)
			}
			if !strings.Contains(body, `href="/api/jobs/`+f.done+`"`) {
				t.Error("page does not link the job's JSON")
			}
		})

		t.Run("RejectedRowsPaged", func(t *testing.T) {
			var lines []int
			path := "/jobs/" + f.done
			for pages := 0; path != ""; pages++ {
				if pages > 5 {
					t.Fatal("more than 5 pages")
				}
				status, doc, body := getPage(t, mux, path)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
				rows, next := rejectedOnPage(t, doc)
				if len(rows) > rejectedPage || (next != "" && len(rows) != rejectedPage) {
					t.Errorf("GET %s: %d rows with next %q; pages hold %d", path, len(rows), next, rejectedPage)
				}
				for _, r := range rows {
					lines = append(lines, r.line)
					wantMsg := fmt.Sprintf("row %d: %s for lessee *********45", r.line, r.code)
					if r.message != wantMsg || r.lessee != "*********45" {
						t.Errorf("row %+v, want message %q, masked", r, wantMsg)
					}
				}
				path, _, _ = strings.Cut(next, "#") // a browser keeps the fragment
			}
			if !slices.Equal(lines, f.allLines) {
				t.Errorf("rows shown %v\nwant %v", lines, f.allLines)
			}
		})

		t.Run("RejectedRowsOfCode", func(t *testing.T) {
			status, doc, _ := getPage(t, mux, "/jobs/"+f.done+"?code=INVALID_VIN")
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			rows, next := rejectedOnPage(t, doc)
			var lines []int
			for _, r := range rows {
				lines = append(lines, r.line)
				if r.code != "INVALID_VIN" {
					t.Errorf("row %+v in the INVALID_VIN rows", r)
				}
			}
			if next != "" || !slices.Equal(lines, f.rejected[lessee.CodeInvalidVIN]) {
				t.Errorf("INVALID_VIN rows %v (next %q), want %v", lines, next, f.rejected[lessee.CodeInvalidVIN])
			}
			if h := textOf(all(byID(doc, "rejected"), "h2", "")[0]); h != fmt.Sprintf("Rejected rows with INVALID_VIN (%d)", len(lines)) {
				t.Errorf("heading %q", h)
			}
		})

		t.Run("Running", func(t *testing.T) {
			status, doc, body := getPage(t, mux, "/jobs/"+f.running)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if !strings.Contains(body, `<meta http-equiv="refresh" content="3">`) {
				t.Error("a running job's page does not reload itself")
			}
			p := all(byID(doc, "progress"), "progress", "")
			if len(p) != 1 || attrOf(p[0], "value") != "0.25" {
				t.Errorf("progress %q", textOf(byID(doc, "progress")))
			}
			if got := textOf(byID(doc, "progress")); !strings.Contains(got, "250 / 1 000 rows") {
				t.Errorf("progress %q", got)
			}
			if got := textOf(byID(doc, "receipts")); !strings.Contains(got, "written when the job finishes") {
				t.Errorf("receipts %q", got)
			}
			if got := textOf(byID(doc, "timings")); !strings.Contains(got, "Running for") {
				t.Errorf("timings %q", got)
			}
		})

		t.Run("Refused", func(t *testing.T) {
			status, doc, _ := getPage(t, mux, "/jobs/"+f.refused)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			ref := byID(doc, "refusal")
			if got := textOf(ref); !strings.HasPrefix(got, "Refused: MISSING_COLUMN the column lessee_id is missing (the header names *********45)") {
				t.Errorf("refusal %q", got)
			}
			if p := all(byID(doc, "progress"), "progress", ""); len(p) != 0 {
				t.Error("a refused file shows a progress bar")
			}
		})

		t.Run("XLSXReceipts", func(t *testing.T) {
			_, doc, _ := getPage(t, mux, "/jobs/"+f.xlsx)
			var hrefs []string
			for _, a := range all(byID(doc, "receipts"), "a", "") {
				hrefs = append(hrefs, attrOf(a, "href"))
			}
			base := "/api/jobs/" + f.xlsx
			if !slices.Equal(hrefs, []string{base + "/receipt", base + "/receipt.xlsx", base + "/summary"}) {
				t.Fatalf("receipt links %v", hrefs)
			}
			for _, tc := range []struct{ path, body, ctype string }{
				{base + "/receipt", "csv receipt", "text/csv"},
				{base + "/receipt.xlsx", "PK xlsx receipt", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
				{base + "/summary", `{"job_id":"` + f.xlsx + `"}`, "application/json"},
			} {
				rec := serve(t, mux, http.MethodGet, tc.path, "", nil)
				if rec.Code != http.StatusOK || rec.Body.String() != tc.body || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) {
					t.Errorf("GET %s: %d %q %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
				}
			}
			// A CSV upload has no XLSX receipt: the answer says why.
			rec := serve(t, mux, http.MethodGet, "/api/jobs/"+f.done+"/receipt.xlsx", "", nil)
			if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "only an XLSX upload") {
				t.Errorf("XLSX receipt of a CSV upload: %d %s", rec.Code, rec.Body)
			}
		})

		t.Run("Quarantined", func(t *testing.T) {
			// A key that names no valid submitter: no receipt, nobody to
			// link to.
			ctx := context.Background()
			id := "eeeeeeeeeeeeeeeeeeeeeee5"
			if _, err := store.BeginJob(ctx, lessee.Job{ID: id, Key: "inbox/" + fixturePerson + "/x.csv", Name: "x.csv"}); err != nil {
				t.Fatal(err)
			}
			if err := store.FinishJob(ctx, id, lessee.JobRefused, lessee.CodeInvalidKey, "the key names no organisation number"); err != nil {
				t.Fatal(err)
			}
			status, doc, body := getPage(t, mux, "/jobs/"+id)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if got := textOf(byID(doc, "receipts")); !strings.Contains(got, "quarantined") {
				t.Errorf("receipts %q", got)
			}
			if strings.Contains(body, `href="/jobs?submitter="`) {
				t.Error("the page links the jobs of an empty submitter")
			}
			if got := textOf(byID(doc, "file")); !strings.Contains(got, "inbox/*********45/x.csv") {
				t.Errorf("file %q: key not masked", got)
			}
		})

		t.Run("ErrNotFound", func(t *testing.T) {
			status, doc, _ := getPage(t, mux, "/jobs/ffffffffffffffffffffffff")
			if status != http.StatusNotFound || !strings.Contains(textOf(byID(doc, "problem")), `no job with id "ffffffffffffffffffffffff"`) {
				t.Errorf("unknown job: %d %q", status, textOf(byID(doc, "problem")))
			}
			// An id that looks like an identity number is masked too.
			if status, _, _ := getPage(t, mux, "/jobs/"+fixturePerson); status != http.StatusNotFound {
				t.Errorf("status %d", status)
			}
		})

		t.Run("ErrBadQuery", func(t *testing.T) {
			for _, q := range []string{"?after=-2", "?after=x", "?code=NOPE", "?code=%3Cscript%3E"} {
				status, doc, _ := getPage(t, mux, "/jobs/"+f.done+q)
				if status != http.StatusBadRequest || textOf(byID(doc, "problem")) == "" {
					t.Errorf("%s: status %d %q", q, status, textOf(byID(doc, "problem")))
				}
			}
		})
	})
}

func TestJobListFiltersAndPages(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		base := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Second)
		// 120 jobs of two submitters; every tenth refused with
		// MISSING_COLUMN, every seventh has INVALID_VIN rows.
		var want []string // newest first
		wantOf := map[string][]string{}
		for i := range 120 {
			id := fmt.Sprintf("f%023d", i)
			sub := []string{"912345602", "912345629"}[i%2]
			j := lessee.Job{ID: id, Bucket: testBucket, Key: "inbox/" + sub + "/f.csv", Submitter: sub, Name: "f.csv",
				Started: base.Add(time.Duration(i) * time.Minute), Codes: map[lessee.Code]int{}}
			if i%7 == 0 {
				j.Codes[lessee.CodeInvalidVIN] = 2
				j.Rejected = 2
			}
			if _, err := store.BeginJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			state, code := lessee.JobCompleted, lessee.Code("")
			if i%10 == 0 {
				state, code = lessee.JobRefused, lessee.CodeMissingColumn
			}
			if err := store.FinishJob(ctx, id, state, code, "x"); err != nil {
				t.Fatal(err)
			}
			want = append([]string{id}, want...)
			for k, match := range map[string]bool{
				"submitter=912345629": sub == "912345629",
				"state=refused":       state == lessee.JobRefused,
				"code=MISSING_COLUMN": code == lessee.CodeMissingColumn,
				"code=INVALID_VIN":    i%7 == 0,
			} {
				if match {
					wantOf[k] = append([]string{id}, wantOf[k]...)
				}
			}
		}
		mux := jobsMux(t, Config{}, store)
		walk := func(path string) []string {
			t.Helper()
			var ids []string
			for pages := 0; path != ""; pages++ {
				if pages > 5 {
					t.Fatal("more than 5 pages")
				}
				status, doc, body := getPage(t, mux, path)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
				rows := all(byID(doc, "jobs"), "tr", "")
				next := ""
				for _, a := range all(doc, "a", "") {
					if attrOf(a, "rel") == "next" {
						next = attrOf(a, "href")
					}
				}
				n := 0
				for _, tr := range rows {
					if id := attrOf(tr, "data-id"); id != "" {
						ids = append(ids, id)
						n++
						// Each row links its job page.
						if links := all(tr, "a", "name"); len(links) != 1 || attrOf(links[0], "href") != "/jobs/"+id {
							t.Errorf("row %s does not link its page", id)
						}
					}
				}
				if n > jobListPage || (next != "" && n != jobListPage) {
					t.Errorf("GET %s: %d jobs, next %q", path, n, next)
				}
				if next != "" {
					// The next page keeps the filters.
					now, err1 := url.Parse(path)
					u, err2 := url.Parse(next)
					if err1 != nil || err2 != nil {
						t.Fatalf("links %q, %q: %v, %v", path, next, err1, err2)
					}
					for k, v := range now.Query() {
						if k != "before" && u.Query().Get(k) != v[0] {
							t.Errorf("next page %q drops %s=%s", next, k, v[0])
						}
					}
				}
				path = next
			}
			return ids
		}
		if got := walk("/jobs"); !slices.Equal(got, want) {
			t.Errorf("all pages: %d jobs\n%v\nwant %d\n%v", len(got), got, len(want), want)
		}
		for _, q := range []string{"submitter=912345629", "state=refused", "code=MISSING_COLUMN", "code=INVALID_VIN"} {
			if got := walk("/jobs?" + q); !slices.Equal(got, wantOf[q]) {
				t.Errorf("%s: %v\nwant %v", q, got, wantOf[q])
			}
		}
		if got := walk("/jobs?submitter=912345602&state=refused"); len(got) != 12 {
			t.Errorf("two filters: %d jobs, want 12", len(got))
		}
		// The form shows the filters asked for.
		_, doc, _ := getPage(t, mux, "/jobs?state=refused&code=MISSING_COLUMN")
		var selected []string
		for _, o := range all(doc, "option", "") {
			if slices.ContainsFunc(o.Attr, func(a html.Attribute) bool { return a.Key == "selected" }) {
				selected = append(selected, textOf(o))
			}
		}
		if !slices.Equal(selected, []string{"refused", "MISSING_COLUMN"}) {
			t.Errorf("selected options %v", selected)
		}
		for _, q := range []string{"submitter=12345", "submitter=" + fixturePerson, "state=lost", "code=nope"} {
			status, doc, _ := getPage(t, mux, "/jobs?"+q)
			if status != http.StatusBadRequest || !regexp.MustCompile(`(submitter|state|code) must be`).MatchString(textOf(byID(doc, "problem"))) {
				t.Errorf("%s: %d %q", q, status, textOf(byID(doc, "problem")))
			}
		}
	})
}

// TestReceiptWithoutObjectStore: a server given no object store answers
// the receipt routes with a sentence, not a panic.
func TestReceiptWithoutObjectStore(t *testing.T) {
	t.Parallel()
	store, ids := jobFixture(t)
	mux := jobsMux(t, Config{}, store)
	for _, p := range []string{"/receipt", "/receipt.xlsx", "/summary"} {
		rec := serve(t, mux, http.MethodGet, "/api/jobs/"+ids["completed"]+p, "", nil)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no object store") {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
}
