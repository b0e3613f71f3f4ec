package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

const (
	hostileName = `<script>alert("x")</script>.csv`
	personName  = "lessee 01017012345.csv" // a file name carrying a fødselsnummer
)

// jobFixture stores three jobs in a real SQLite store: a completed one with
// a hostile name, a running one half done, and a refused one whose name
// carries an identity number.
func jobFixture(t *testing.T) (*sqlstore.Store, map[string]string) {
	t.Helper()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	ids := map[string]string{"completed": "aaaaaaaaaaaaaaaaaaaaaaa1", "running": "aaaaaaaaaaaaaaaaaaaaaaa2", "refused": "aaaaaaaaaaaaaaaaaaaaaaa3"}

	begin := func(j lessee.Job) {
		t.Helper()
		if _, err := store.BeginJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		j.Format, j.SHA256 = lessee.FormatCSV, "5e1a"
		if err := store.UpdateJobInfo(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	begin(lessee.Job{ID: ids["completed"], Bucket: testBucket, Key: "inbox/912345602/" + hostileName, Version: "v1",
		Submitter: "912345602", Name: hostileName, Size: 4096, RowsTotal: 22, RowsDone: 22,
		Applied: 9, Unchanged: 3, Rejected: 10, Started: base,
		Codes: map[lessee.Code]int{lessee.CodeNotOwner: 1, lessee.CodeInvalidVIN: 2, lessee.CodeMissingField: 7}})
	if err := store.FinishJob(ctx, ids["completed"], lessee.JobCompleted, "", ""); err != nil {
		t.Fatal(err)
	}
	begin(lessee.Job{ID: ids["running"], Bucket: testBucket, Key: "inbox/912345629/big.csv", Version: "v1",
		Submitter: "912345629", Name: "big.csv", Size: 50 << 20, RowsTotal: 1000, RowsDone: 250, Applied: 250,
		Started: base.Add(20 * time.Minute)})
	begin(lessee.Job{ID: ids["refused"], Bucket: testBucket, Key: "inbox/912345637/" + personName, Version: "v1",
		Submitter: "912345637", Name: personName, Size: 10, Started: base.Add(40 * time.Minute)})
	if err := store.FinishJob(ctx, ids["refused"], lessee.JobRefused, lessee.CodeMissingColumn,
		"the column lessee_id is missing; see 01017012345"); err != nil {
		t.Fatal(err)
	}
	return store, ids
}

func jobsMux(t *testing.T, cfg Config, jobs Jobs) *http.ServeMux {
	t.Helper()
	cfg.Bucket = testBucket
	mux := http.NewServeMux()
	New(cfg, jobs, nil, nil, nil, nil).Routes(mux)
	return mux
}

func TestJobsAPI(t *testing.T) {
	t.Parallel()
	store, ids := jobFixture(t)
	mux := jobsMux(t, Config{}, store)

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, mux, http.MethodGet, "/api/jobs", "", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		assertNoStore(t, rec.Header())
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if strings.Contains(rec.Body.String(), "01017012345") {
			t.Errorf("an identity number reached the API: %s", rec.Body)
		}
		var views []JobView
		if err := json.Unmarshal(rec.Body.Bytes(), &views); err != nil {
			t.Fatal(err)
		}
		var order []lessee.JobState
		for _, v := range views {
			order = append(order, v.State)
		}
		if len(views) != 3 || views[0].ID != ids["refused"] || views[1].ID != ids["running"] || views[2].ID != ids["completed"] {
			t.Fatalf("jobs %v, want refused, running, completed (newest first)", order)
		}

		refused, running, done := views[0], views[1], views[2]
		if refused.Name != "lessee *********45.csv" || refused.Key != "inbox/912345637/lessee *********45.csv" ||
			refused.Message != "the column lessee_id is missing; see *********45" || refused.Code != lessee.CodeMissingColumn {
			t.Errorf("refused job not masked or incomplete: %+v", refused)
		}
		if refused.Receipt != "receipts/912345637/lessee *********45.csv.receipt.csv" {
			t.Errorf("refused receipt %q", refused.Receipt)
		}

		if running.Progress != 0.25 || running.RowsDone != 250 || running.RowsTotal != 1000 || running.Finished != nil {
			t.Errorf("running job: %+v", running)
		}
		if running.Receipt != "" || running.DurationMS < (39*time.Minute).Milliseconds() {
			t.Errorf("running job: receipt %q, duration %d ms", running.Receipt, running.DurationMS)
		}

		if done.Progress != 1 || done.Applied != 9 || done.Unchanged != 3 || done.Rejected != 10 || done.Format != lessee.FormatCSV || done.Size != 4096 {
			t.Errorf("completed job: %+v", done)
		}
		wantCodes := []CodeCount{{lessee.CodeMissingField, 7}, {lessee.CodeInvalidVIN, 2}, {lessee.CodeNotOwner, 1}}
		if len(done.Codes) != len(wantCodes) {
			t.Fatalf("codes %v, want %v", done.Codes, wantCodes)
		}
		for i := range wantCodes {
			if done.Codes[i] != wantCodes[i] {
				t.Errorf("codes %v, want %v", done.Codes, wantCodes)
			}
		}
		if done.Finished == nil || done.DurationMS != done.Finished.Sub(done.Started).Milliseconds() || done.DurationMS < (59*time.Minute).Milliseconds() {
			t.Errorf("completed job: finished %v, duration %d ms", done.Finished, done.DurationMS)
		}
		if done.Receipt != "receipts/912345602/"+hostileName+".receipt.csv" || done.Summary != "receipts/912345602/"+hostileName+".summary.json" {
			t.Errorf("receipt keys %q, %q", done.Receipt, done.Summary)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, mux, http.MethodGet, "/api/jobs?limit=1", "", nil)
		var views []JobView
		if err := json.Unmarshal(rec.Body.Bytes(), &views); err != nil {
			t.Fatal(err)
		}
		if len(views) != 1 || views[0].ID != ids["refused"] {
			t.Errorf("limit=1 gave %d jobs", len(views))
		}
		for _, bad := range []string{"0", "-1", "x", "1001"} {
			if rec := serve(t, mux, http.MethodGet, "/api/jobs?limit="+bad, "", nil); rec.Code != http.StatusBadRequest {
				t.Errorf("limit=%s: status %d, want 400", bad, rec.Code)
			}
		}
	})

	t.Run("One", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, mux, http.MethodGet, "/api/jobs/"+ids["running"], "", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		assertNoStore(t, rec.Header())
		var v JobView
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if v.ID != ids["running"] || v.State != lessee.JobRunning || v.Submitter != "912345629" {
			t.Errorf("job %+v", v)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, mux, http.MethodGet, "/api/jobs/ffffffffffffffffffffffff", "", nil)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

func TestJobsPage(t *testing.T) {
	t.Parallel()
	store, ids := jobFixture(t)
	mux := jobsMux(t, Config{}, store)
	rec := serve(t, mux, http.MethodGet, "/jobs", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	assertNoStore(t, h)
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	assertPageCSP(t, h)
	body := rec.Body.String()
	if strings.Contains(body, "<script") {
		t.Error("the page has a script; it is meant to work without one")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.csv") {
		t.Error("the hostile file name is not shown escaped")
	}
	if strings.Contains(body, "01017012345") {
		t.Error("an identity number reached the page")
	}
	for _, want := range []string{
		`href="/monitoring/"`,
		`<tr data-id="` + ids["running"] + `" data-state="running">`,
		`<a class="name" href="/jobs/` + ids["running"] + `">big.csv</a>`,
		`<progress max="1" value="0.25">25%</progress> <span class="rows">250 / 1` + "\u202f" + `000</span>`,
		`<div><span class="code">MISSING_FIELD</span> ×7</div><div><span class="code">INVALID_VIN</span> ×2</div><div><span class="code">NOT_OWNER</span> ×1</div>`,
		// A refused file shows its reason and no progress bar.
		`<td class="status"><span class="state state-refused">refused</span>
<div class="progress"><span class="muted">file not read</span></div></td>`,
		`<div class="message"><span class="code">MISSING_COLUMN</span> the column lessee_id is missing; see *********45</div>`,
		// Receipt links name the file kind, the key is their title.
		`<a href="/api/jobs/` + ids["completed"] + `/receipt" title="receipts/912345602/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.csv.receipt.csv">CSV</a>`,
		`<a href="/api/jobs/` + ids["completed"] + `/summary" title=`,
		// A running job on the page: it reloads itself.
		`<meta http-equiv="refresh" content="3">`,
		// The filters offer every state.
		`<option>running</option>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, jobsMux(t, Config{}, sqlstoretest.SQLite(t)), http.MethodGet, "/jobs", "", nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No jobs yet.") {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), `http-equiv="refresh"`) {
			t.Error("an empty list reloads itself")
		}
	})
}

// assertPageCSP checks that a page allows no script and only its own
// nonce'd style.
func assertPageCSP(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, "style-src 'nonce-") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestOperatorAuth(t *testing.T) {
	t.Parallel()
	store, _ := jobFixture(t)
	mux := jobsMux(t, Config{OperatorUser: "ops", OperatorPassword: "correct horse"}, store)
	srv := New(Config{OperatorUser: "ops", OperatorPassword: "correct horse"}, nil, nil, nil, nil, nil)
	mux.Handle("/monitoring/", srv.RequireOperator(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("asynqmon"))
	})))

	for _, path := range []string{"/jobs", "/jobs/aaaaaaaaaaaaaaaaaaaaaaa1", "/api/jobs", "/api/jobs/aaaaaaaaaaaaaaaaaaaaaaa1", "/monitoring/"} {
		t.Run(strings.Trim(path, "/"), func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name, auth string
				want       int
			}{
				{"ErrNone", "", http.StatusUnauthorized},
				{"ErrWrongPassword", basic("ops", "wrong"), http.StatusUnauthorized},
				{"ErrWrongUser", basic("admin", "correct horse"), http.StatusUnauthorized},
				{"ErrBearer", "Bearer correct horse", http.StatusUnauthorized},
				{"OK", basic("ops", "correct horse"), http.StatusOK},
			} {
				rec := serve(t, mux, http.MethodGet, path, tc.auth, nil)
				if rec.Code != tc.want {
					t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.want)
				}
				if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s: WWW-Authenticate %q", tc.name, rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}

	t.Run("Unconfigured", func(t *testing.T) {
		t.Parallel()
		open := New(Config{OperatorUser: "ops"}, nil, nil, nil, nil, nil) // no password: no auth
		rec := serve(t, open.RequireOperator(http.NotFoundHandler()), http.MethodGet, "/", "", nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("status %d, want the wrapped handler's 404", rec.Code)
		}
	})
}

func assertNoStore(t *testing.T, h http.Header) {
	t.Helper()
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
}
