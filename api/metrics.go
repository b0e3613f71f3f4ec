package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus metrics: requests by route and status
// (lessee_api_requests_total) and their latency by route
// (lessee_api_request_duration_seconds). Labels are the route pattern and
// the status code: never a path, token or identifier. How many changes
// each transaction carried (lessee_api_changes_per_transaction) shows the
// grouping of concurrent changes at work.
type Metrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
	Grouped  prometheus.Histogram
}

// NewMetrics registers the API's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lessee_api_requests_total",
			Help: "Single-change API requests by route and HTTP status.",
		}, []string{"route", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lessee_api_request_duration_seconds",
			Help:    "Single-change API request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		Grouped: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lessee_api_changes_per_transaction",
			Help:    "Single-change API changes applied together in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.Grouped)
	return m
}

// observeGroup counts a transaction of n changes.
func (m *Metrics) observeGroup(n int) {
	if m != nil {
		m.Grouped.Observe(float64(n))
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// instrument counts and times h's requests under route.
func (m *Metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	if m == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		m.Requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		m.Duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}
