package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// modeFixture stores one finished job per upload prefix in a real SQLite
// store, all named fleet.csv by one submitter; it returns their ids by
// prefix.
func modeFixture(t *testing.T) (*sqlstore.Store, map[string]string) {
	t.Helper()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	ids := map[string]string{}
	for i, tc := range []struct {
		prefix string
		mode   lessee.Mode
		dryRun bool
		ops    map[lessee.Operation]int
	}{
		{"inbox/", lessee.ModeChanges, false, nil},
		{"snapshot/", lessee.ModeSnapshot, false, map[lessee.Operation]int{lessee.OpKeep: 7, lessee.OpRemove: 1}},
		{"dryrun/", lessee.ModeChanges, true, nil},
		{"dryrun-snapshot/", lessee.ModeSnapshot, true, map[lessee.Operation]int{lessee.OpAdd: 2}},
	} {
		id := "bbbbbbbbbbbbbbbbbbbbbbb" + string(rune('1'+i))
		ids[tc.prefix] = id
		j := lessee.Job{ID: id, Bucket: testBucket, Key: tc.prefix + "912345602/fleet.csv", Version: "v1",
			Submitter: "912345602", Name: "fleet.csv", Size: 100, RowsTotal: 8, RowsDone: 8, Applied: 1, Unchanged: 7,
			Mode: tc.mode, DryRun: tc.dryRun, Operations: tc.ops, Started: base.Add(time.Duration(i) * time.Minute)}
		if _, err := store.BeginJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if err := store.FinishJob(ctx, id, lessee.JobCompleted, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	return store, ids
}

func TestJobsAPIModes(t *testing.T) {
	t.Parallel()
	store, ids := modeFixture(t)
	mux := jobsMux(t, Config{}, store)
	rec := serve(t, mux, http.MethodGet, "/api/jobs", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var views []JobView
	if err := json.Unmarshal(rec.Body.Bytes(), &views); err != nil {
		t.Fatal(err)
	}
	byID := map[string]JobView{}
	for _, v := range views {
		byID[v.ID] = v
	}
	for _, tc := range []struct {
		prefix     string
		mode       lessee.Mode
		dryRun     bool
		receipt    string
		summary    string
		operations map[lessee.Operation]int
	}{
		{"inbox/", lessee.ModeChanges, false, "receipts/912345602/fleet.csv.receipt.csv", "receipts/912345602/fleet.csv.summary.json", nil},
		{"snapshot/", lessee.ModeSnapshot, false, "receipts/912345602/fleet.csv.receipt.csv", "receipts/912345602/fleet.csv.summary.json",
			map[lessee.Operation]int{lessee.OpKeep: 7, lessee.OpRemove: 1}},
		{"dryrun/", lessee.ModeChanges, true, "receipts/912345602/fleet.csv.dryrun.receipt.csv", "receipts/912345602/fleet.csv.dryrun.summary.json", nil},
		{"dryrun-snapshot/", lessee.ModeSnapshot, true, "receipts/912345602/fleet.csv.dryrun.receipt.csv", "receipts/912345602/fleet.csv.dryrun.summary.json",
			map[lessee.Operation]int{lessee.OpAdd: 2}},
	} {
		v, ok := byID[ids[tc.prefix]]
		if !ok {
			t.Fatalf("%s: job not listed", tc.prefix)
		}
		if v.Mode != tc.mode || v.DryRun != tc.dryRun || v.Receipt != tc.receipt || v.Summary != tc.summary {
			t.Errorf("%s: mode %q dry_run %v receipt %q summary %q; want %q %v %q %q",
				tc.prefix, v.Mode, v.DryRun, v.Receipt, v.Summary, tc.mode, tc.dryRun, tc.receipt, tc.summary)
		}
		if len(v.Operations) != len(tc.operations) {
			t.Errorf("%s: operations %v, want %v", tc.prefix, v.Operations, tc.operations)
		}
		for op, n := range tc.operations {
			if v.Operations[op] != n {
				t.Errorf("%s: operations %v, want %v", tc.prefix, v.Operations, tc.operations)
			}
		}
	}

	// The JSON always names mode and dry_run, so scripts need no default.
	rec = serve(t, mux, http.MethodGet, "/api/jobs/"+ids["inbox/"], "", nil)
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["mode"] != "changes" || raw["dry_run"] != false {
		t.Errorf("/api/jobs/{id} of an inbox upload: mode %v, dry_run %v", raw["mode"], raw["dry_run"])
	}
	if _, ok := raw["operations"]; ok {
		t.Errorf("/api/jobs/{id} of a change file has operations: %s", rec.Body)
	}
	rec = serve(t, mux, http.MethodGet, "/api/jobs/"+ids["dryrun-snapshot/"], "", nil)
	raw = nil
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["mode"] != "snapshot" || raw["dry_run"] != true {
		t.Errorf("/api/jobs/{id} of a snapshot dry run: mode %v, dry_run %v", raw["mode"], raw["dry_run"])
	}
}

func TestNewJobViewEmptyModeIsChanges(t *testing.T) {
	t.Parallel()
	v := NewJobView(lessee.Job{ID: "x", State: lessee.JobCompleted, Submitter: "912345602", Name: "a.csv"}, time.Now())
	if v.Mode != lessee.ModeChanges || v.DryRun || v.Receipt != "receipts/912345602/a.csv.receipt.csv" {
		t.Errorf("view %+v", v)
	}
}

func TestModeLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode   lessee.Mode
		dryRun bool
		want   string
	}{
		{"", false, "changes"},
		{lessee.ModeChanges, false, "changes"},
		{lessee.ModeSnapshot, false, "snapshot"},
		{lessee.ModeChanges, true, "dry run"},
		{lessee.ModeSnapshot, true, "snapshot · dry run"},
	} {
		if got := ModeLabel(tc.mode, tc.dryRun); got != tc.want {
			t.Errorf("ModeLabel(%q, %v) = %q, want %q", tc.mode, tc.dryRun, got, tc.want)
		}
	}
}

func TestJobsPageModes(t *testing.T) {
	t.Parallel()
	store, ids := modeFixture(t)
	rec := serve(t, jobsMux(t, Config{}, store), http.MethodGet, "/jobs", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for prefix, want := range map[string]string{
		"inbox/":           `<span class="mode">changes</span>`,
		"snapshot/":        `<span class="mode">snapshot</span>`,
		"dryrun/":          `<span class="mode dry-run">dry run</span>`,
		"dryrun-snapshot/": `<span class="mode dry-run">snapshot · dry run</span>`,
	} {
		row := body[strings.Index(body, `<tr data-id="`+ids[prefix]+`"`):]
		row = row[:strings.Index(row, "</tr>")]
		if !strings.Contains(row, want) {
			t.Errorf("%s row lacks %s:\n%s", prefix, want, row)
		}
	}

	// The job page of a snapshot names its mode and charts its rows by
	// derived operation, most first; a change file's has no such chart.
	_, doc, _ := getPage(t, jobsMux(t, Config{}, store), "/jobs/"+ids["dryrun-snapshot/"])
	if got := textOf(byID(doc, "file")); !strings.Contains(got, "Mode snapshot · dry run") {
		t.Errorf("file facts %q", got)
	}
	_, doc, _ = getPage(t, jobsMux(t, Config{}, store), "/jobs/"+ids["snapshot/"])
	var ops []string
	for _, tr := range all(byID(doc, "counts"), "tr", "") {
		ops = append(ops, textOf(tr))
	}
	if strings.Join(ops, ", ") != "keep 7, remove 1" {
		t.Errorf("operations %q, want keep 7, remove 1", ops)
	}
	_, doc, _ = getPage(t, jobsMux(t, Config{}, store), "/jobs/"+ids["inbox/"])
	if ops := all(byID(doc, "counts"), "tr", ""); len(ops) != 0 {
		t.Errorf("a change file's page charts %d operations", len(ops))
	}
}

// memObjects serves fixed objects for the receipt API.
type memObjects map[string][]byte

func (m memObjects) Head(_ context.Context, key string) (lessee.Object, error) {
	b, ok := m[key]
	if !ok {
		return lessee.Object{}, lessee.Errorf(lessee.ENOTFOUND, "no object %s", key)
	}
	return lessee.Object{Key: key, Size: int64(len(b))}, nil
}

func (m memObjects) Download(ctx context.Context, key, _ string, w io.Writer) (lessee.Object, error) {
	o, err := m.Head(ctx, key)
	if err != nil {
		return o, err
	}
	_, err = io.Copy(w, bytes.NewReader(m[key]))
	return o, err
}

func TestReceiptAPIDryRun(t *testing.T) {
	t.Parallel()
	store, ids := modeFixture(t)
	objects := memObjects{
		"receipts/912345602/fleet.csv.receipt.csv":         []byte("real receipt"),
		"receipts/912345602/fleet.csv.summary.json":        []byte(`{"job_id":"` + ids["snapshot/"] + `"}`),
		"receipts/912345602/fleet.csv.dryrun.receipt.csv":  []byte("dry-run receipt"),
		"receipts/912345602/fleet.csv.dryrun.summary.json": []byte(`{"job_id":"` + ids["dryrun-snapshot/"] + `"}`),
	}
	mux := http.NewServeMux()
	New(Config{Bucket: testBucket}, store, objects, nil, nil, nil).Routes(mux)

	for _, tc := range []struct {
		prefix   string
		status   int
		body     string
		filename string
	}{
		{"snapshot/", http.StatusOK, "real receipt", "fleet.csv.receipt.csv"},
		{"dryrun-snapshot/", http.StatusOK, "dry-run receipt", "fleet.csv.dryrun.receipt.csv"},
		// Replaced by a later upload of the same kind: not served.
		{"inbox/", http.StatusNotFound, "", ""},
		{"dryrun/", http.StatusNotFound, "", ""},
	} {
		rec := serve(t, mux, http.MethodGet, "/api/jobs/"+ids[tc.prefix]+"/receipt", "", nil)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.prefix, rec.Code, tc.status, rec.Body)
			continue
		}
		if tc.status != http.StatusOK {
			continue
		}
		if rec.Body.String() != tc.body {
			t.Errorf("%s: body %q, want %q", tc.prefix, rec.Body, tc.body)
		}
		if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, `filename=`+tc.filename) {
			t.Errorf("%s: Content-Disposition %q, want filename %s", tc.prefix, cd, tc.filename)
		}
	}
}

// TestReceiptAPIServesEachJobsHistory: two jobs under one name, each with
// its receipts in its history folder; the latest keys hold the second's.
// Each job's link serves its own receipt (never a 404 while retained), the
// job list names its history keys, and a job whose history the retention
// sweep removed answers 404 saying so.
func TestReceiptAPIServesEachJobsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlstoretest.SQLite(t)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	ids := []string{"cccccccccccccccccccccccc", "dddddddddddddddddddddddd"}
	objects := memObjects{}
	for i, id := range ids {
		j := lessee.Job{ID: id, Bucket: testBucket, Key: "inbox/912345602/lessees.csv", Version: fmt.Sprintf("v%d", i),
			Submitter: "912345602", Name: "lessees.csv", Started: base.Add(time.Duration(i) * time.Minute)}
		if _, err := store.BeginJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		attempt, err := store.ClaimAttempt(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.FenceAttempt(ctx, id, attempt, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := store.FinishJob(ctx, id, lessee.JobCompleted, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := store.SetHistory(ctx, id, "receipts/912345602/history/"+id+"/"); err != nil {
			t.Fatal(err)
		}
		objects["receipts/912345602/history/"+id+"/lessees.csv.receipt.csv"] = []byte("receipt of " + id)
		objects["receipts/912345602/history/"+id+"/lessees.csv.summary.json"] = []byte(`{"job_id":"` + id + `"}`)
	}
	objects["receipts/912345602/lessees.csv.receipt.csv"] = []byte("receipt of " + ids[1])
	objects["receipts/912345602/lessees.csv.summary.json"] = []byte(`{"job_id":"` + ids[1] + `"}`)
	mux := http.NewServeMux()
	New(Config{Bucket: testBucket}, store, objects, nil, nil, nil).Routes(mux)
	for _, id := range ids {
		rec := serve(t, mux, http.MethodGet, "/api/jobs/"+id+"/receipt", "", nil)
		if rec.Code != http.StatusOK || rec.Body.String() != "receipt of "+id {
			t.Errorf("job %s: %d %q", id, rec.Code, rec.Body)
		}
		rec = serve(t, mux, http.MethodGet, "/api/jobs/"+id, "", nil)
		if want := `"receipt":"receipts/912345602/history/` + id + `/lessees.csv.receipt.csv"`; !strings.Contains(rec.Body.String(), want) {
			t.Errorf("job %s view lacks %s: %s", id, want, rec.Body)
		}
	}
	// The list in JSON and the job list page link each job to its own
	// history receipt, though both jobs share a name (and latest keys);
	// each link serves that job's bytes.
	var list []JobView
	rec := serve(t, mux, http.MethodGet, "/api/jobs", "", nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("/api/jobs: %d %s (%v)", rec.Code, rec.Body, err)
	}
	page := serve(t, mux, http.MethodGet, "/jobs", "", nil).Body.String()
	for _, id := range ids {
		history := "receipts/912345602/history/" + id + "/"
		i := slices.IndexFunc(list, func(v JobView) bool { return v.ID == id })
		if i < 0 {
			t.Fatalf("/api/jobs lacks job %s: %s", id, rec.Body)
		}
		if v := list[i]; v.Receipt != history+"lessees.csv.receipt.csv" || v.Summary != history+"lessees.csv.summary.json" {
			t.Errorf("/api/jobs: job %s receipt %q, summary %q; want its history's", id, v.Receipt, v.Summary)
		}
		for _, want := range []string{
			`<a href="/api/jobs/` + id + `/receipt" title="` + history + `lessees.csv.receipt.csv">`,
			`<a href="/api/jobs/` + id + `/summary" title="` + history + `lessees.csv.summary.json">`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("/jobs lacks %s", want)
			}
		}
		if got := serve(t, mux, http.MethodGet, "/api/jobs/"+id+"/summary", "", nil).Body.String(); got != `{"job_id":"`+id+`"}` {
			t.Errorf("job %s's summary link serves %q", id, got)
		}
	}

	if err := store.HistoryRemoved(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	rec = serve(t, mux, http.MethodGet, "/api/jobs/"+ids[0]+"/receipt", "", nil)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "retention") {
		t.Errorf("removed history: %d %s", rec.Code, rec.Body)
	}
	// Past retention the list links nothing for that job: no 404 behind a link.
	if page := serve(t, mux, http.MethodGet, "/jobs", "", nil).Body.String(); strings.Contains(page, `/api/jobs/`+ids[0]+`/receipt"`) {
		t.Errorf("/jobs still links job %s's removed receipt", ids[0])
	}
}
