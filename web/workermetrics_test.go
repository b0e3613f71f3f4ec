package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestWorkerProcesses runs real Asynq servers against one Redis and reads
// lessee_worker_processes as a scrape does: a process counts once per
// queue it serves, and a stopped server's queue drops to 0.
func TestWorkerProcesses(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	// The exports queue exists in Redis but nothing serves it.
	if _, err := client.Enqueue(asynq.NewTask("noop", nil), asynq.Queue("exports")); err != nil {
		t.Fatal(err)
	}
	start := func(queue string) *asynq.Server {
		srv := asynq.NewServer(opt, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel})
		if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return srv
	}
	start("small")
	large := start("large")

	reg := NewRegistry(insp)
	read := func() map[string]float64 {
		t.Helper()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", MetricsHandler(reg))
		rec := serve(t, mux, http.MethodGet, "/metrics", "", nil)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		got := map[string]float64{}
		for _, m := range families["lessee_worker_processes"].GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		return got
	}
	// Both servers run in this one process: one process per queue.
	want := map[string]float64{"small": 1, "large": 1, "exports": 0}
	deadline := time.Now().Add(10 * time.Second)
	for got := read(); !equalCounts(got, want); got = read() {
		if time.Now().After(deadline) {
			t.Fatalf("lessee_worker_processes = %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	large.Shutdown()
	want["large"] = 0
	if got := read(); !equalCounts(got, want) {
		t.Errorf("after the large server stopped: lessee_worker_processes = %v, want %v", got, want)
	}
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if got, ok := a[k]; !ok || got != v {
			return false
		}
	}
	return true
}
