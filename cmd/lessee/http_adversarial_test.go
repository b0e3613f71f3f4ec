package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/s3store"
)

// startServiceWith runs `lessee serve` in-process like startService, after
// mutate has adjusted the defaults.
func startServiceWith(t *testing.T, mutate func(*serveConfig)) *e2e {
	t.Helper()
	cfg := defaultServeConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	return startService(t, cfg)
}

// rawStatus sends a request with a header of headerBytes bytes over a
// plain connection and returns the status line of the answer. The header
// is written while the answer is read: the server answers before it has
// read the whole request.
func rawStatus(t *testing.T, addr string, headerBytes int) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", headerBytes) + "\r\n\r\n"
		_, _ = io.WriteString(conn, req) // fails once the server closes: expected
	}()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		t.Fatalf("no answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// advDo sends one request and returns the status and body.
func advDo(t *testing.T, method, url string, body io.Reader, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPHardening checks the limits and authentication of every HTTP
// listener of `lessee serve`, as configured for production: operator
// credentials and a webhook secret set.
func TestHTTPHardening(t *testing.T) {
	const user, password, secret = "ops", "correct horse battery", "hook-secret-2026"
	e := startServiceWith(t, func(c *serveConfig) {
		c.OperatorUser, c.OperatorPassword, c.WebhookSecret = user, password, secret
	})
	base := "http://" + e.svc.httpAddr
	s3Addr := strings.TrimPrefix(e.svc.s3Endpoint, "http://")

	t.Run("ErrHeaderTooLarge", func(t *testing.T) {
		for name, addr := range map[string]string{"http": e.svc.httpAddr, "s3": s3Addr} {
			if got := rawStatus(t, addr, 1<<20); !strings.Contains(got, " 431 ") {
				t.Errorf("%s listener: a 1 MiB header got %q, want 431", name, got)
			}
		}
	})
	t.Run("OKHeaderWithinLimit", func(t *testing.T) {
		if got := rawStatus(t, e.svc.httpAddr, 16<<10); !strings.Contains(got, " 200 ") {
			t.Errorf("a 16 KiB header got %q, want 200", got)
		}
	})

	bearer := http.Header{"Authorization": {"Bearer " + secret}}
	t.Run("ErrWebhookBodyTooLarge", func(t *testing.T) {
		body := `{"Records":[` + strings.Repeat(`{"eventName":"s3:ObjectCreated:Put"},`, 60_000) + `{}]}` // about 2 MiB
		if status, _ := advDo(t, http.MethodPost, base+"/hooks/s3", strings.NewReader(body), bearer); status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", status)
		}
	})
	t.Run("ErrWebhookWithoutSecret", func(t *testing.T) {
		for name, h := range map[string]http.Header{
			"none":  nil,
			"wrong": {"Authorization": {"Bearer " + secret + "x"}},
			"basic": {"Authorization": {"Basic " + advBasicAuth("sns", "wrong")}},
		} {
			if status, _ := advDo(t, http.MethodPost, base+"/hooks/s3", strings.NewReader(`{}`), h); status != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", name, status)
			}
		}
	})
	t.Run("OKWebhookWithSecret", func(t *testing.T) {
		if status, body := advDo(t, http.MethodPost, base+"/hooks/s3", strings.NewReader(`{}`), bearer); status != http.StatusNoContent {
			t.Errorf("status %d %s, want 204", status, body)
		}
	})

	for _, path := range []string{"/jobs", "/api/jobs", "/monitoring/", "/monitoring/api/queues"} {
		t.Run("Operator"+path, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				header http.Header
				want   int
			}{
				{"ErrNoCredentials", nil, http.StatusUnauthorized},
				{"ErrWrongPassword", http.Header{"Authorization": {"Basic " + advBasicAuth(user, "wrong")}}, http.StatusUnauthorized},
				{"ErrWrongUser", http.Header{"Authorization": {"Basic " + advBasicAuth("admin", password)}}, http.StatusUnauthorized},
				{"ErrWebhookSecret", bearer, http.StatusUnauthorized},
				{"OK", http.Header{"Authorization": {"Basic " + advBasicAuth(user, password)}}, http.StatusOK},
			} {
				if status, _ := advDo(t, http.MethodGet, base+path, nil, tc.header); status != tc.want {
					t.Errorf("%s: status %d, want %d", tc.name, status, tc.want)
				}
			}
		})
	}
	// Health and metrics stay open for probes and scrapers; they carry no
	// personal data (TestPersonalDataNotExposed).
	for _, path := range []string{"/healthz", "/livez", "/metrics"} {
		t.Run("Open"+path, func(t *testing.T) {
			if status, _ := advDo(t, http.MethodGet, base+path, nil, nil); status != http.StatusOK {
				t.Errorf("status %d, want 200", status)
			}
		})
	}
}

func advBasicAuth(user, password string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// advElevenDigits finds an 11-digit run not part of a longer one: the shape
// of a fødselsnummer or D-number.
var advElevenDigits = regexp.MustCompile(`(?:^|[^0-9])([0-9]{11})(?:[^0-9]|$)`)

// TestPersonalDataNotExposed uploads files whose names and rows carry
// identity numbers (processed, refused and quarantined) and then reads
// everything an operator can: the job API, the job page, /metrics and the
// logs. None may show an unmasked 11-digit number. The receipt keys
// themselves keep the name the submitter chose (see the threat model).
func TestPersonalDataNotExposed(t *testing.T) {
	ctx := context.Background()
	e := startServiceWith(t, nil)
	base := "http://" + e.svc.httpAddr
	const nordlys = "912345602"
	e.upload(t, "inbox/"+nordlys+"/12128822249.csv", "changes/all-outcomes.csv")
	e.upload(t, "inbox/"+nordlys+"/sub/24126834558.csv", "changes/all-outcomes.csv")
	e.upload(t, "inbox/123456789/03030353373.csv", "changes/all-outcomes.csv")
	e.upload(t, "inbox/"+nordlys+"/lessee 121288 22249.csv", "changes/missing-column.csv")
	if s := e.waitSummary(t, nordlys, "12128822249.csv"); s["status"] != "completed" {
		t.Fatalf("summary %v", s)
	}
	// A refused bad name is keyed by its job id: <job>-sub_<name>.
	badName := ""
	waitFor(t, 30*time.Second, func() bool {
		e.objects.List(ctx, "receipts/"+nordlys+"/", func(o lessee.Object) error {
			if strings.HasSuffix(o.Key, "-sub_24126834558.csv.summary.json") && !strings.Contains(o.Key, "/history/") {
				badName = strings.TrimSuffix(strings.TrimPrefix(o.Key, "receipts/"+nordlys+"/"), ".summary.json")
			}
			return nil
		})
		return badName != ""
	})
	if s := e.waitSummary(t, nordlys, badName); s["code"] != "INVALID_KEY" {
		t.Fatalf("summary %v", s)
	}
	if s := e.waitSummary(t, nordlys, "lessee 121288 22249.csv"); s["code"] != "MISSING_COLUMN" {
		t.Fatalf("summary %v", s)
	}
	waitFor(t, 20*time.Second, func() bool {
		_, err := e.objects.Head(ctx, "inbox/123456789/03030353373.csv")
		return errors.Is(err, s3store.ErrNotFound)
	})

	status, list := advDo(t, http.MethodGet, base+"/api/jobs", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/api/jobs: %d %s", status, list)
	}
	var jobs []struct {
		ID, Key string
	}
	if err := json.Unmarshal([]byte(list), &jobs); err != nil || len(jobs) != 4 {
		t.Fatalf("/api/jobs: %d jobs, %v: %s", len(jobs), err, list)
	}
	pages := map[string]string{"/api/jobs": list}
	for _, j := range jobs {
		if !strings.Contains(j.Key, "***") {
			t.Errorf("job key %q is not masked", j.Key)
		}
		_, pages["/api/jobs/"+j.ID] = advDo(t, http.MethodGet, base+"/api/jobs/"+j.ID, nil, nil)
	}
	_, pages["/jobs"] = advDo(t, http.MethodGet, base+"/jobs", nil, nil)
	for path, body := range pages {
		if m := advElevenDigits.FindStringSubmatch(body); m != nil {
			t.Errorf("%s shows the unmasked number %s", path, m[1])
		}
		if strings.Contains(body, "121288 22249") {
			t.Errorf("%s shows a printed fødselsnummer", path)
		}
	}

	_, metrics := advDo(t, http.MethodGet, base+"/metrics", nil, nil)
	if !strings.Contains(metrics, "lessee_files_total") {
		t.Fatalf("/metrics lacks the service's metrics:\n%s", metrics)
	}
	for _, line := range strings.Split(metrics, "\n") {
		open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
		if open >= 0 && end > open && !strings.HasPrefix(line, "#") {
			if m := advElevenDigits.FindStringSubmatch(line[open : end+1]); m != nil {
				t.Errorf("a metrics label holds %s: %s", m[1], line)
			}
		}
	}
	for _, id := range []string{"12128822249", "24126834558", "03030353373", "02079123660", "17051743229"} {
		if strings.Contains(metrics, id) {
			t.Errorf("/metrics holds the identity number %s", id)
		}
	}

	if m := advElevenDigits.FindStringSubmatch(e.logs.String()); m != nil {
		t.Errorf("the logs hold the unmasked number %s", m[1])
	}
	if bytes.Contains([]byte(e.logs.String()), []byte("121288 22249")) {
		t.Error("the logs hold a printed fødselsnummer")
	}
	t.Run("URLEncodedPrintedForm", func(t *testing.T) {
		// gofakes3 logs the URL-encoded copy source, where the printed form
		// "121288 22249" reads "121288%2022249".
		if strings.Contains(e.logs.String(), "121288%2022249") || strings.Contains(e.logs.String(), "121288+22249") {
			t.Error("a URL-encoded printed fødselsnummer reached the log unmasked")
		}
	})
}
