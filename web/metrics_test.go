package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fleetreg/lessee"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	b.upload(t, "inbox/912345602/all outcomes 2024.csv", "operation;vin\n")
	if rec := b.post(t, "/hooks/s3", bearer, testdata(t, "minio-put-space.json")); rec.Code != http.StatusNoContent {
		t.Fatalf("webhook status %d", rec.Code)
	}

	reg := NewRegistry(b.insp)
	m := NewMetrics(reg)
	start := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	m.ObserveJob(lessee.Job{State: lessee.JobCompleted, Size: 4096, Applied: 9, Unchanged: 3, Rejected: 11,
		Codes:   map[lessee.Code]int{lessee.CodeMissingField: 7, lessee.CodeInvalidVIN: 2, lessee.CodeNotOwner: 1},
		Started: start, Finished: start.Add(90 * time.Second)})
	m.ObserveJob(lessee.Job{State: lessee.JobRefused, Code: lessee.CodeMissingColumn, Size: 10,
		Started: start, Finished: start.Add(2 * time.Second)})
	m.ObserveJob(lessee.Job{State: lessee.JobRunning, Size: 1 << 30, Applied: 1000}) // not finished: ignored
	// Given up after its retries, and an upload quarantined.
	m.ObserveJob(lessee.Job{State: lessee.JobRefused, Code: lessee.CodeProcessingFailed, Key: "inbox/912345602/big.csv",
		Started: start, Finished: start.Add(time.Second)})
	m.ObserveJob(lessee.Job{State: lessee.JobRefused, Code: lessee.CodeInvalidKey, Key: "inbox/123456789/x.csv",
		Started: start, Finished: start.Add(time.Second)})
	// A refused name with a valid submitter is refused, not quarantined.
	m.ObserveJob(lessee.Job{State: lessee.JobRefused, Code: lessee.CodeInvalidKey, Key: "inbox/912345602/a/b.csv",
		Started: start, Finished: start.Add(time.Second)})
	// Throughput: 20,000 rows in 4 s; 9,999 rows are too few to count.
	m.ObserveJob(lessee.Job{State: lessee.JobCompleted, RowsTotal: 20000, Applied: 20000,
		Started: start, Finished: start.Add(4 * time.Second)})
	m.ObserveJob(lessee.Job{State: lessee.JobCompleted, RowsTotal: RateMinRows - 1, Applied: RateMinRows - 1,
		Started: start, Finished: start.Add(time.Second)})
	// A dry run counts as a file, not as rows: it changed nothing.
	m.ObserveJob(lessee.Job{State: lessee.JobCompleted, DryRun: true, Size: 100, Applied: 500, Rejected: 5,
		Codes: map[lessee.Code]int{lessee.CodeNotOwner: 5}, Started: start, Finished: start.Add(time.Second)})

	mux := http.NewServeMux()
	New(Config{Bucket: testBucket}, nil, nil, nil, MetricsHandler(reg), nil).Routes(mux)
	rec := serve(t, mux, http.MethodGet, "/metrics", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"asynq_tasks_enqueued_total", map[string]string{"queue": "small", "state": "pending"}, 1},
		{"asynq_queue_size", map[string]string{"queue": "small"}, 1},
		{"lessee_rows_total", map[string]string{"status": "applied", "code": ""}, 9 + 20000 + RateMinRows - 1},
		{"lessee_rows_total", map[string]string{"status": "unchanged", "code": ""}, 3},
		{"lessee_rows_total", map[string]string{"status": "rejected", "code": "MISSING_FIELD"}, 7},
		{"lessee_rows_total", map[string]string{"status": "rejected", "code": "INVALID_VIN"}, 2},
		{"lessee_rows_total", map[string]string{"status": "rejected", "code": "NOT_OWNER"}, 1},
		{"lessee_rows_total", map[string]string{"status": "rejected", "code": ""}, 1}, // 11 rejected, 10 coded
		{"lessee_files_total", map[string]string{"status": "completed"}, 4},
		{"lessee_files_total", map[string]string{"status": "refused"}, 4},
		{"lessee_files_refused_total", map[string]string{"code": "MISSING_COLUMN"}, 1},
		{"lessee_files_refused_total", map[string]string{"code": "PROCESSING_FAILED"}, 1},
		{"lessee_files_refused_total", map[string]string{"code": "INVALID_KEY"}, 2},
		{"lessee_files_quarantined_total", nil, 1},
		{"lessee_intake_faults_total", map[string]string{"path": "sftp"}, 0},
	} {
		if got, ok := value(families, tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if got := families["lessee_rows_total"].GetMetric(); len(got) != 6 {
		t.Errorf("lessee_rows_total has %d series, want 6 (the running job ignored)", len(got))
	}
	for name, want := range map[string]struct {
		count uint64
		sum   float64
	}{
		"lessee_file_duration_seconds": {8, 93 + 3 + 4 + 1},
		"lessee_file_size_bytes":       {8, 4206},
		"lessee_file_rows_per_second":  {1, 5000},
	} {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Errorf("%s missing", name)
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != want.count || h.GetSampleSum() != want.sum {
			t.Errorf("%s: count %d sum %v, want %d and %v", name, h.GetSampleCount(), h.GetSampleSum(), want.count, want.sum)
		}
	}
	for _, name := range []string{"go_goroutines", "go_build_info", "asynq_tasks_processed_total", "asynq_queue_latency_seconds"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}

// value finds the counter or gauge value of the series with exactly labels.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match || len(got) != len(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsBeforeAnyFile: a fresh process exports the series alerts
// compare with zero, so an alert on them has a series to judge.
func TestMetricsBeforeAnyFile(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(nil)
	NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range families {
		got[f.GetName()] = len(f.GetMetric())
	}
	for name, want := range map[string]int{
		"lessee_files_total": 2, "lessee_files_refused_total": 1, "lessee_files_quarantined_total": 1,
		"lessee_intake_faults_total": 3, "lessee_file_rows_per_second": 1,
	} {
		if got[name] != want {
			t.Errorf("%s has %d series before any file, want %d", name, got[name], want)
		}
	}
}
