package web

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetreg/lessee"
)

// JobCounter counts jobs by state from the job table every process shares.
type JobCounter interface {
	JobCounts(ctx context.Context) (map[lessee.JobState]int, error)
}

// jobsCollector exposes lessee_jobs{state}, read from the job table at each
// scrape. Unlike lessee_files_total, which each worker counts for the files
// it finished, it is the whole service's count on every process, the HTTP
// one included, so a Prometheus that scrapes only one process still sees
// every file.
type jobsCollector struct {
	jobs    JobCounter
	desc    *prometheus.Desc
	timeout time.Duration
}

// NewJobsCollector returns the collector of lessee_jobs over jobs.
func NewJobsCollector(jobs JobCounter) prometheus.Collector {
	return &jobsCollector{
		jobs: jobs,
		desc: prometheus.NewDesc("lessee_jobs", "Jobs on record by state (queued, running, completed, refused), for the whole service.",
			[]string{"state"}, nil),
		timeout: 5 * time.Second,
	}
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.jobs.JobCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []lessee.JobState{lessee.JobQueued, lessee.JobRunning, lessee.JobCompleted, lessee.JobRefused} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
