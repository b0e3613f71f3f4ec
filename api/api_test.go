package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// tokens is an Authenticator over fixed tokens: "Bearer <orgnr>" acts as
// that organisation, "Bearer noscope" lacks the scope.
type tokens struct{}

func (tokens) Authenticate(_ context.Context, h string) (string, error) {
	t, ok := strings.CutPrefix(h, "Bearer ")
	switch {
	case !ok || t == "":
		return "", ErrUnauthenticated
	case t == "noscope":
		return "", ErrForbidden
	}
	return t, nil
}

const (
	owner      = "912345602" // the demo fleet owner
	competitor = "912345610"
	partner    = "912345629" // third party, delegated by owner
)

func setup(t *testing.T, cfg Config) (*httptest.Server, *sqlstore.Store) {
	t.Helper()
	store := sqlstoretest.SQLite(t)
	dir := t.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), dir, sqlstore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return serveAPI(t, store, cfg), store
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

func answerField(t *testing.T, b []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %q is not a JSON object: %v", b, err)
	}
	s, _ := m[key].(string)
	return s
}

func TestPostChange(t *testing.T) {
	t.Parallel()
	srv, store := setup(t, Config{})
	const add = `{"operation":"add","registration_number":"EL10001","lessee_id":"12128822249","start_date":"2026-01-01","reference":"api-1"}`
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string // answer code
		state             string // answer status
	}{
		{"OKApplied", owner, add, 200, "", "applied"},
		{"OKUnchanged", owner, add, 200, "", "unchanged"},
		{"OKAuthorityShape", owner, `{"handling":"OPPRETTE","kjennemerke":"EL10005","leasingtakerId":{"fodselsnummer":"02079123660"},"etternavn":"Hansen","fra_dato":"01.02.2026"}`, 200, "", "applied"},
		{"OKNorwegianKeys", partner, `{"operasjon":"legg_til","regnr":"EL 10007","leietaker":"17051743229","fra_dato":"2026-01-01","paa_vegne_av":"912345602"}`, 200, "", "applied"},
		{"ErrConflict", owner, `{"operation":"add","registration_number":"EL10002","lessee_id":"03030353373","start_date":"2026-01-15"}`, 422, "LESSEE_CONFLICT", "rejected"},
		{"ErrCompetitorsVehicle", competitor, `{"operation":"remove","registration_number":"EL10004"}`, 422, "NOT_OWNER", "rejected"},
		{"ErrOnBehalfWithoutDelegation", partner, `{"operation":"remove","registration_number":"FJ20001","on_behalf_of":"912345610"}`, 422, "DELEGATION_EXPIRED", "rejected"},
		// A zero-day period: the API is the same engine as a change file.
		{"ErrEndOnStart", owner, `{"operation":"add","registration_number":"EL10001","lessee_id":"12128822249","start_date":"2025-03-01","end_date":"2025-03-01"}`, 422, "END_BEFORE_START", "rejected"},
		{"ErrUnknownOperation", owner, `{"operation":"frobnicate","registration_number":"EL10001"}`, 422, "INVALID_OPERATION", "rejected"},
		{"ErrInvalidLesseeID", owner, `{"operation":"add","vin":"WVWZZZ1KZAW000008","lessee_id":"12128822248","start_date":"2026-01-01"}`, 422, "INVALID_LESSEE_ID", "rejected"},
		{"ErrNotJSON", owner, `{"operation":`, 400, "BAD_REQUEST", ""},
		{"ErrArray", owner, `[{"operation":"add"}]`, 400, "BAD_REQUEST", ""},
		{"ErrNumber", owner, `{"operation":"add","lessee_id":12128822249}`, 400, "BAD_REQUEST", ""},
		{"ErrUnknownField", owner, `{"operation":"add","colour":"red"}`, 400, "BAD_REQUEST", ""},
		{"ErrTwoValues", owner, `{"operation":"add"} {}`, 400, "BAD_REQUEST", ""},
		{"ErrEmpty", owner, `{}`, 400, "BAD_REQUEST", ""},
		{"ErrTooLarge", owner, `{"reference":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 400, "BAD_REQUEST", ""},
		{"ErrNoToken", "", add, 401, "UNAUTHENTICATED", ""},
		{"ErrNoScope", "noscope", add, 403, "FORBIDDEN", ""},
	} {
		r := do(t, srv, http.MethodPost, "/api/v1/changes", tc.token, tc.body)
		if r.status != tc.status || answerField(t, r.body, "code") != tc.code || answerField(t, r.body, "status") != tc.state {
			t.Errorf("%s: %d %s; want %d, code %q, status %q", tc.name, r.status, r.body, tc.status, tc.code, tc.state)
		}
		if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", tc.name)
		}
		if bytes.Contains(r.body, []byte("12128822249")) {
			t.Errorf("%s: the answer holds an unmasked identity number: %s", tc.name, r.body)
		}
	}
	audit, err := store.Audit(context.Background(), "WVWZZZ1KZAW000001")
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Source != "api" || audit[0].RequestID == "" || audit[0].Submitter != owner {
		t.Errorf("audit of the API change: %+v", audit)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	srv, store := setup(t, Config{})
	const body = `{"operation":"remove","registration_number":"EL10004","end_date":"2026-02-01"}`
	first := do(t, srv, http.MethodPost, "/api/v1/changes", owner, body, "Idempotency-Key", "k-1")
	if first.status != 200 || answerField(t, first.body, "status") != "applied" {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	// The same change, its keys in another order: the first answer.
	again := do(t, srv, http.MethodPost, "/api/v1/changes", owner,
		`{"end_date":"2026-02-01","registration_number":"EL10004","operation":"remove"}`, "Idempotency-Key", "k-1")
	if again.status != 200 || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repeat: %d %s (replayed %q); want the first answer %s", again.status, again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	reused := do(t, srv, http.MethodPost, "/api/v1/changes", owner,
		`{"operation":"remove","registration_number":"EL10006","end_date":"2026-02-01"}`, "Idempotency-Key", "k-1")
	if reused.status != 422 || answerField(t, reused.body, "code") != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another request under the key: %d %s", reused.status, reused.body)
	}
	// Keys are per organisation: another's same key is its own.
	other := do(t, srv, http.MethodPost, "/api/v1/changes", competitor, body, "Idempotency-Key", "k-1")
	if other.status != 422 || answerField(t, other.body, "code") != "NOT_OWNER" {
		t.Errorf("another organisation's key: %d %s", other.status, other.body)
	}
	if audit, _ := store.Audit(context.Background(), "WVWZZZ1KZAW000004"); len(audit) != 1 {
		t.Errorf("%d audit entries, want 1", len(audit))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, Config{Rate: 1})
	const body = `{"operation":"remove","registration_number":"EL10005"}`
	if r := do(t, srv, http.MethodPost, "/api/v1/changes", owner, body); r.status == 429 {
		t.Fatalf("first request limited: %s", r.body)
	}
	r := do(t, srv, http.MethodPost, "/api/v1/changes", owner, body)
	if r.status != 429 || r.header.Get("Retry-After") == "" || answerField(t, r.body, "code") != "RATE_LIMITED" {
		t.Errorf("second request at once: %d %s, Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Another organisation has its own rate.
	if r := do(t, srv, http.MethodPost, "/api/v1/changes", competitor, body); r.status == 429 {
		t.Errorf("another organisation limited: %s", r.body)
	}
}

func TestVehicleView(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, Config{})
	// No existence leak: every 404 one caller gets is the same (in its
	// own language: the owner's is English, the competitor's Norwegian).
	notFound := map[string][]byte{}
	for _, tc := range []struct {
		name, token, id string
		status          int
	}{
		{"OKOwnerByRegNumber", owner, "EL10002", 200},
		{"OKOwnerByVIN", owner, "WVWZZZ1KZAW000002", 200},
		{"OKOwnerPrintedForm", owner, "el-10002", 200},
		{"OKDelegate", partner, "EL10002", 200},
		{"ErrCompetitor", competitor, "EL10002", 404},
		{"ErrCompetitorNoSuchVehicle", competitor, "ZZ99999", 404},
		{"ErrNoSuchVehicle", owner, "ZZ99999", 404},
		{"ErrGarbage", owner, "%00", 404},
		{"ErrNoToken", "", "EL10002", 401},
	} {
		r := do(t, srv, http.MethodGet, "/api/v1/vehicles/"+tc.id, tc.token, "")
		if r.status != tc.status {
			t.Errorf("%s: %d %s; want %d", tc.name, r.status, r.body, tc.status)
			continue
		}
		if r.status == 404 {
			if notFound[tc.token] == nil {
				notFound[tc.token] = r.body
			} else if !bytes.Equal(r.body, notFound[tc.token]) {
				t.Errorf("%s: 404 body %s differs from %s", tc.name, r.body, notFound[tc.token])
			}
		}
		if r.status == 200 {
			var v VehicleView
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if v.VIN != "WVWZZZ1KZAW000002" || v.Owner != owner || v.Lessee == nil || v.Lessee.LesseeID != "15038512363" || len(v.Periods) != 1 {
				t.Errorf("%s: %+v", tc.name, v)
			}
		}
	}
}

// FuzzDecodeChange: no input panics, and what decodes names only
// canonical columns.
func FuzzDecodeChange(f *testing.F) {
	for _, s := range []string{`{"operation":"add"}`, `{"leasingtakerId":{"fodselsnummer":"1"}}`, `{`, `[]`, `{"a":1}`, `{"regnr":null}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := DecodeChange(bytes.NewReader(b))
		if err != nil {
			return
		}
		if raw.Line != 2 || raw.Index != 0 {
			t.Fatalf("row %d index %d", raw.Line, raw.Index)
		}
	})
}

// TestMetrics: requests are counted by route pattern and status, never by
// path (which holds a vehicle's identifier).
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	srv, _ := setup(t, Config{Metrics: NewMetrics(reg)})
	do(t, srv, http.MethodPost, "/api/v1/changes", owner, `{"operation":"remove","registration_number":"EL10005"}`)
	do(t, srv, http.MethodPost, "/api/v1/changes", "", `{}`)
	do(t, srv, http.MethodGet, "/api/v1/vehicles/EL10002", competitor, "")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			if f.GetName() == "lessee_api_requests_total" {
				got[labels] = m.GetCounter().GetValue()
			}
			if strings.Contains(labels, "EL10002") {
				t.Errorf("a label holds the vehicle: %s", labels)
			}
		}
	}
	for _, want := range []string{"route=/api/v1/changes status=422 ", "route=/api/v1/changes status=401 ", "route=/api/v1/vehicles/{id} status=404 "} {
		if got[want] != 1 {
			t.Errorf("lessee_api_requests_total{%s} = %v; all: %v", want, got[want], got)
		}
	}
}

// TestFleetMarks: an applied change marks its fleet for export once per
// flush, however many changes; a rejected one marks nothing.
func TestFleetMarks(t *testing.T) {
	t.Parallel()
	srv, store := setup(t, Config{})
	s := New(store, tokens{}, Config{}, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	s.Routes(mux)
	h := httptest.NewServer(mux)
	t.Cleanup(h.Close)
	_ = srv
	version := func() int64 {
		later := time.Now().Add(time.Hour)
		due, err := store.DueExports(context.Background(), later, later)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			if d.OrgNr == owner {
				return d.Version
			}
		}
		return 0
	}
	before := version()
	for _, body := range []string{`{"operation":"remove","registration_number":"EL10004"}`, `{"operation":"remove","registration_number":"EL10006"}`,
		`{"operation":"remove","registration_number":"EL10005"}`} { // the last is rejected: no lessee
		do(t, h, http.MethodPost, "/api/v1/changes", owner, body)
	}
	if v := version(); v != before {
		t.Fatalf("marked before the flush: %d, was %d", v, before)
	}
	if err := s.FlushMarks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != before+1 {
		t.Errorf("after the flush: version %d, want %d", v, before+1)
	}
	if err := s.FlushMarks(context.Background()); err != nil || version() != before+1 {
		t.Errorf("a second flush with nothing changed marked again")
	}
}
