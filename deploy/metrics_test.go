package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v4"
)

// notExported are metrics a rule may name that no lessee process exports:
// Prometheus makes `up` for every scrape target itself.
var notExported = map[string]bool{"up": true}

// TestRulesAndPanelsNameExportedMetrics starts a real `lessee serve`
// (embedded Redis, SQLite and S3, as a user's first run), gives it a file
// to process, one to quarantine and one API request, scrapes /metrics and
// checks that every metric each alerting rule and each dashboard panel
// names is one the service exports.
func TestRulesAndPanelsNameExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := scrapeService(t)

	rules := alertRules(t)
	if len(rules) == 0 {
		t.Fatal("alerts.yml holds no alerting rule")
	}
	for _, r := range rules {
		missing, err := unknownMetrics(r.Expr, exported)
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
		}
		for _, m := range missing {
			t.Errorf("alert %s names %s, which the service does not export", r.Alert, m)
		}
	}
	exprs := panelExprs(t)
	if len(exprs) == 0 {
		t.Fatal("lessee.json holds no panel query")
	}
	for _, p := range exprs {
		missing, err := unknownMetrics(grafanaVars.Replace(p.expr), exported)
		if err != nil {
			t.Errorf("panel %q: %v", p.panel, err)
		}
		for _, m := range missing {
			t.Errorf("panel %q names %s, which the service does not export", p.panel, m)
		}
	}
}

// TestUnknownMetrics holds the check itself to what it must catch: a
// renamed metric, one inside a function or a binary expression, a name
// given as __name__, a histogram's series; and what it must accept.
func TestUnknownMetrics(t *testing.T) {
	t.Parallel()
	exported := map[string]bool{"lessee_files_total": true, "lessee_file_duration_seconds_bucket": true, "up": true}
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum(rate(lessee_files_total[5m]))`, nil},
		{`sum(rate(lessee_file_total[5m]))`, []string{"lessee_file_total"}},
		{`up == 0 and on() lessee_jobs > 0`, []string{"lessee_jobs"}},
		{`{__name__="lessee_rows_total", status="applied"}`, []string{"lessee_rows_total"}},
		{`histogram_quantile(0.5, sum by (le) (rate(lessee_file_duration_seconds_bucket[1h])))`, nil},
		{`histogram_quantile(0.5, sum by (le) (rate(lessee_file_duration_bucket[1h])))`, []string{"lessee_file_duration_bucket"}},
	} {
		got, err := unknownMetrics(tc.expr, exported)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("unknownMetrics(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
	if _, err := unknownMetrics(`sum(rate(lessee_files_total[5m])`, exported); err == nil {
		t.Error("an expression that does not parse was accepted")
	}
}

// TestRulesHaveRunbooks: every alert says how urgent it is, what happened
// and what to do, and its runbook is a section of docs/operations.md.
func TestRulesHaveRunbooks(t *testing.T) {
	t.Parallel()
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(ops), -1) {
		anchors[anchor(m[1])] = true
	}
	for _, r := range alertRules(t) {
		if r.For == "" {
			t.Errorf("alert %s has no for:", r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("alert %s has severity %q, want critical, warning or info", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s has no %s annotation", r.Alert, a)
			}
		}
		doc, frag, _ := strings.Cut(r.Annotations["runbook"], "#")
		if doc != "docs/operations.md" || !anchors[frag] {
			t.Errorf("alert %s: runbook %q is no section of docs/operations.md", r.Alert, r.Annotations["runbook"])
		}
	}
}

// anchor is the fragment GitHub gives a Markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unknownMetrics parses a PromQL expression and returns, sorted, the
// metric names it selects that are neither in exported nor made by
// Prometheus itself.
func unknownMetrics(expr string, exported map[string]bool) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var missing []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				name = m.Value
			}
		}
		if name != "" && !exported[name] && !notExported[name] && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return nil
	})
	slices.Sort(missing)
	return missing, nil
}

// grafanaVars stands in for Grafana's own variables, which PromQL does
// not know.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

type panelExpr struct{ panel, expr string }

// panelExprs returns every query of the dashboard's panels, those inside
// collapsed rows too.
func panelExprs(t *testing.T) []panelExpr {
	t.Helper()
	data, err := os.ReadFile("grafana/lessee.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		SchemaVersion int               `json:"schemaVersion"`
		Panels        []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("lessee.json: %v", err)
	}
	var out []panelExpr
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("lessee.json panel: %v", err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a query without expr", p.Title)
				}
				out = append(out, panelExpr{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// scrapeService builds and starts `lessee serve` with embedded
// dependencies on free ports, makes it process a file, quarantine one and
// answer an API request, and returns the names of the series its
// /metrics exports (a histogram's as _bucket, _sum and _count).
func scrapeService(t *testing.T) map[string]bool {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH to build lessee with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lessee")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/lessee").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, s3Addr, apiAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--data", filepath.Join(dir, "data"),
		"--listen", httpAddr, "--s3-listen", s3Addr, "--api-listen", apiAddr, "--scan-interval", "100ms")
	cmd.Dir = ".." // the demo registry is read from examples/
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LESSEE_") { // the service's own settings only
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("lessee serve output:\n%s", logs.String())
		}
	})

	base := "http://" + httpAddr
	waitFor(t, 2*time.Minute, "lessee serve to answer /livez", func() bool {
		resp, err := http.Get(base + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	csv, err := os.ReadFile("../examples/changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	// The embedded endpoint checks no signatures: a plain PUT uploads.
	for _, key := range []string{"inbox/912345602/all-outcomes.csv", "inbox/123456789/nobody.csv"} {
		put(t, "http://"+s3Addr+"/lessee/"+key, csv)
	}
	resp, err := http.Post("http://"+apiAddr+"/api/v1/changes", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /api/v1/changes without a token: %s, want 401", resp.Status)
	}

	var families map[string]*dto.MetricFamily
	waitFor(t, 2*time.Minute, "both files to be counted in /metrics", func() bool {
		families = scrape(t, base+"/metrics")
		done := 0.0
		for _, name := range []string{"lessee_files_total", "lessee_files_quarantined_total"} {
			for _, m := range families[name].GetMetric() {
				done += m.GetCounter().GetValue()
			}
		}
		return done >= 3 // two files finished, one of them quarantined
	})
	exported := map[string]bool{}
	for name, f := range families {
		exported[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			exported[name+"_bucket"], exported[name+"_sum"], exported[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			exported[name+"_sum"], exported[name+"_count"] = true, true
		}
	}
	return exported
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

func put(t *testing.T, url string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
