package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee/apiauth"
)

// TestAPIEndToEnd runs the single-change API of a running service with
// tokens from `lessee token`: a change applied and audited as an API call,
// the bulk path seeing it and the other way round, the statuses of bad
// tokens, idempotent repeats (concurrent ones too) and the vehicle view's
// 404 for another tenant.
func TestAPIEndToEnd(t *testing.T) {
	e := startService(t, serveConfig{})
	if e.svc.apiAddr == "" {
		t.Fatal("the API is not listening")
	}
	base := "http://" + e.svc.apiAddr
	ctx := context.Background()
	token := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"LESSEE_DATA": e.svc.cfg.Data}
		if err := run(ctx, append([]string{"token"}, args...), func(k string) string { return env[k] }, &out, &errOut); err != nil {
			t.Fatalf("lessee token %v: %v\n%s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	owner, competitor := token("--as", "912345602"), token("--as", "912345610")
	call := func(method, path, tok, body string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	// An API change, then the same change from a file: unchanged.
	const add = `{"operation":"add","registration_number":"EL10001","lessee_id":"12128822249","start_date":"2026-01-01"}`
	if code, _, body := call("POST", "/api/v1/changes", owner, add); code != 200 || !strings.Contains(body, `"status":"applied"`) {
		t.Fatalf("POST: %d %s", code, body)
	}
	audit, err := e.svc.store.Audit(ctx, "WVWZZZ1KZAW000001")
	if err != nil || len(audit) != 1 || audit[0].Source != "api" || audit[0].RequestID == "" {
		t.Fatalf("audit %+v, %v", audit, err)
	}
	file := "operation,registration_number,lessee_id,start_date\nadd,EL10001,12128822249,2026-01-01\nremove,EL10006,,\n"
	if err := e.objects.Put(ctx, "inbox/912345602/api.csv", strings.NewReader(file), int64(len(file)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	summary := waitForObject(t, e, "receipts/912345602/api.csv.summary.json", time.Minute)
	if !strings.Contains(string(summary), `"unchanged": 1`) || !strings.Contains(string(summary), `"applied": 1`) {
		t.Errorf("the file after the API change: %s", summary)
	}
	// The file's removal, seen by the API: removing again is unchanged.
	if code, _, body := call("POST", "/api/v1/changes", owner, `{"operation":"remove","registration_number":"EL10006"}`); code != 200 || !strings.Contains(body, `"status":"unchanged"`) {
		t.Errorf("the API after the file's removal: %d %s", code, body)
	}

	// Tokens.
	dev, err := apiauth.LoadOrCreateDevIssuer(e.svc.cfg.Data, apiauth.DefaultDevIssuer, apiauth.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := dev.Token("912345602", apiauth.DefaultScope, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tok string
		status    int
	}{
		{"ErrNoToken", "", 401},
		{"ErrGarbage", "x.y.z", 401},
		{"ErrTampered", owner[:len(owner)-4] + "AAAA", 401},
		{"ErrNoScope", token("--as", "912345602", "--scope", ""), 403},
		{"ErrExpired", expired, 401},
	} {
		code, h, body := call("POST", "/api/v1/changes", tc.tok, add)
		if code != tc.status || !strings.Contains(body, `"code"`) {
			t.Errorf("%s: %d %s; want %d", tc.name, code, body, tc.status)
		}
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", tc.name)
		}
	}

	// Eight concurrent repeats with one key apply once.
	var wg sync.WaitGroup
	bodies := make([]string, 8)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, bodies[i] = call("POST", "/api/v1/changes", owner, `{"operation":"remove","registration_number":"EL10004","end_date":"2026-02-01"}`, "Idempotency-Key", "same")
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		if b != bodies[0] || !strings.Contains(b, `"status":"applied"`) {
			t.Errorf("repeat %d: %s; want %s, applied", i, b, bodies[0])
		}
	}
	if audit, _ := e.svc.store.Audit(ctx, "WVWZZZ1KZAW000004"); len(audit) != 1 {
		t.Errorf("%d audit entries after eight repeats, want 1", len(audit))
	}

	// The vehicle view: the owner sees it, a competitor gets the 404 of a
	// vehicle that does not exist.
	code, _, body := call("GET", "/api/v1/vehicles/EL10001", owner, "")
	var view struct {
		Lessee *struct {
			LesseeID string `json:"lessee_id"`
		} `json:"lessee"`
	}
	if err := json.Unmarshal([]byte(body), &view); code != 200 || err != nil || view.Lessee == nil || view.Lessee.LesseeID != "12128822249" {
		t.Errorf("owner's view: %d %s", code, body)
	}
	_, _, missing := call("GET", "/api/v1/vehicles/ZZ99999", competitor, "")
	if code, _, body := call("GET", "/api/v1/vehicles/EL10001", competitor, ""); code != 404 || body != missing {
		t.Errorf("competitor's view: %d %s; want 404 %s", code, body, missing)
	}
	if code, _, body := call("GET", "/.well-known/jwks.json", "", ""); code != 200 || !strings.Contains(body, `"keys"`) {
		t.Errorf("JWKS: %d %s", code, body)
	}
}

// waitForObject polls for key until it exists or timeout passes.
func waitForObject(t *testing.T, e *e2e, key string, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var buf bytes.Buffer
		if _, err := e.objects.Download(context.Background(), key, "", &buf); err == nil {
			return buf.Bytes()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", key, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
