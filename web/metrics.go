package web

import (
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/objectkey"
)

// Metrics are the service's own Prometheus metrics, updated as files finish.
type Metrics struct {
	// RowsTotal counts rows by status and code (lessee_rows_total); code is
	// empty for applied and unchanged rows.
	RowsTotal *prometheus.CounterVec
	// FilesTotal counts finished files by final status, completed or
	// refused (lessee_files_total).
	FilesTotal *prometheus.CounterVec
	// FileDuration is the processing time of a file, from the job's start
	// to its finish (lessee_file_duration_seconds).
	FileDuration prometheus.Histogram
	// FileSize is the size of processed files (lessee_file_size_bytes).
	FileSize prometheus.Histogram
	// IntakeFaults counts what an intake path could not do, by path: a
	// failed inbox listing or a file the scan could not queue (scan), an
	// event record dropped (webhook), an SFTP upload stored but not queued
	// (sftp). The inbox scan picks up all of them once the fault is over
	// (lessee_intake_faults_total).
	IntakeFaults *prometheus.CounterVec
	// FilesRefused counts refused files by refusal code
	// (lessee_files_refused_total): PROCESSING_FAILED is a file given up
	// after its retries, the others are the submitter's to fix.
	FilesRefused *prometheus.CounterVec
	// FilesQuarantined counts uploads under a key that names no valid
	// submitter, moved to quarantine/ (lessee_files_quarantined_total).
	FilesQuarantined prometheus.Counter
	// FileRowsPerSecond is the throughput of each completed file of at
	// least RateMinRows rows (lessee_file_rows_per_second).
	FileRowsPerSecond prometheus.Histogram
}

// RateMinRows is the fewest rows a file must have for its throughput to
// be observed: a file's fixed cost (download, receipt, moves; about a
// second) would make a small file look slow.
const RateMinRows = 10000

// Intake paths, the values of IntakeFaults' label.
const (
	PathScan    = "scan"
	PathWebhook = "webhook"
	PathSFTP    = "sftp"
)

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RowsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lessee", Name: "rows_total",
			Help: "Rows of finished files by status (applied, unchanged, rejected) and code.",
		}, []string{"status", "code"}),
		FilesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lessee", Name: "files_total",
			Help: "Finished files by final status (completed, refused).",
		}, []string{"status"}),
		FileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "lessee", Name: "file_duration_seconds",
			Help: "Time from a file's first processing attempt to its receipt.",
			// 0.1 s to about 55 minutes: a few rows to the largest files.
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
		}),
		FileSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "lessee", Name: "file_size_bytes",
			Help: "Size of finished files.",
			// 1 KiB to 256 MiB, past the default 200 MiB limit.
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		IntakeFaults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lessee", Name: "intake_faults_total",
			Help: "Failed inbox listings and uploads an intake path (scan, webhook, sftp) could not queue; the scan retries them.",
		}, []string{"path"}),
		FilesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "lessee", Name: "files_refused_total",
			Help: "Refused files by code; PROCESSING_FAILED: given up after every retry.",
		}, []string{"code"}),
		FilesQuarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "lessee", Name: "files_quarantined_total",
			Help: "Uploads whose key names no valid submitter, moved to quarantine/.",
		}),
		FileRowsPerSecond: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "lessee", Name: "file_rows_per_second",
			Help: "Rows per second of each completed file of at least 10,000 rows, from its first attempt to its receipt.",
			// 100 to about 800,000 rows/s: a stalled database to the COPY floor.
			Buckets: prometheus.ExponentialBuckets(100, 2, 14),
		}),
	}
	// Present at 0, so alerts and dashboards see a series before the first
	// event.
	for _, p := range []string{PathScan, PathWebhook, PathSFTP} {
		m.IntakeFaults.WithLabelValues(p)
	}
	for _, s := range []lessee.JobState{lessee.JobCompleted, lessee.JobRefused} {
		m.FilesTotal.WithLabelValues(string(s))
	}
	m.FilesRefused.WithLabelValues(string(lessee.CodeProcessingFailed))
	reg.MustRegister(m.RowsTotal, m.FilesTotal, m.FileDuration, m.FileSize, m.IntakeFaults,
		m.FilesRefused, m.FilesQuarantined, m.FileRowsPerSecond)
	return m
}

// ObserveJob records a finished job: its rows (not a dry run's), its final
// status, duration and size. Call it once per job, when the job finishes; jobs not yet
// completed or refused are ignored.
func (m *Metrics) ObserveJob(j lessee.Job) {
	if j.State != lessee.JobCompleted && j.State != lessee.JobRefused {
		return
	}
	m.FilesTotal.WithLabelValues(string(j.State)).Inc()
	if j.State == lessee.JobRefused {
		m.FilesRefused.WithLabelValues(string(j.Code)).Inc()
		if objectkey.Parse(j.Key).Verdict == objectkey.NoSubmitter {
			m.FilesQuarantined.Inc()
		}
	}
	if !j.Started.IsZero() && j.Finished.After(j.Started) {
		took := j.Finished.Sub(j.Started).Seconds()
		m.FileDuration.Observe(took)
		if j.State == lessee.JobCompleted && j.RowsTotal >= RateMinRows {
			m.FileRowsPerSecond.Observe(float64(j.RowsTotal) / took)
		}
	}
	m.FileSize.Observe(float64(j.Size))
	if j.DryRun {
		// A dry run's rows changed nothing: counting them as applied
		// would tell operators of changes the registry never saw.
		return
	}
	if j.Applied > 0 {
		m.RowsTotal.WithLabelValues(string(lessee.StatusApplied), "").Add(float64(j.Applied))
	}
	if j.Unchanged > 0 {
		m.RowsTotal.WithLabelValues(string(lessee.StatusUnchanged), "").Add(float64(j.Unchanged))
	}
	coded := 0
	for code, n := range j.Codes {
		if n > 0 {
			m.RowsTotal.WithLabelValues(string(lessee.StatusRejected), string(code)).Add(float64(n))
			coded += n
		}
	}
	// Every rejected row has a code; should one not, it still counts.
	if rest := j.Rejected - coded; rest > 0 {
		m.RowsTotal.WithLabelValues(string(lessee.StatusRejected), "").Add(float64(rest))
	}
}

// NewRegistry returns a registry with the Go runtime, process and build
// info collectors and, when inspector is not nil, asynq's queue metrics
// (asynq_tasks_enqueued_total, asynq_queue_size, ...) and the live worker
// processes per queue (lessee_worker_processes), read from Redis at each
// scrape. Register the service's Metrics on it with NewMetrics.
func NewRegistry(inspector *asynq.Inspector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	if inspector != nil {
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(inspector), NewWorkersCollector(inspector))
	}
	return reg
}

// MetricsHandler serves reg in the Prometheus exposition formats. A failing
// collector (Redis down) is reported and the rest still served.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg,
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}
