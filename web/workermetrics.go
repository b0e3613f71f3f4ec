package web

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetreg/lessee/worker"
)

// workersCollector exposes lessee_worker_processes{queue}: how many
// processes have an Asynq server with a live heartbeat on each queue. A
// worker process killed, hung or cut off from Redis drops out within about
// 10 s (Asynq's heartbeat is 5 s, its record kept for two), so an alert
// can tell "no worker on queue small" from a quiet queue. It is read from
// Redis at each scrape, the whole service's count on every process.
type workersCollector struct {
	insp *asynq.Inspector
	desc *prometheus.Desc
}

// NewWorkersCollector returns the collector of lessee_worker_processes
// over insp.
func NewWorkersCollector(insp *asynq.Inspector) prometheus.Collector {
	return &workersCollector{
		insp: insp,
		desc: prometheus.NewDesc("lessee_worker_processes",
			"Processes with a live Asynq heartbeat serving each queue (0: nothing works that queue).",
			[]string{"queue"}, nil),
	}
}

func (c *workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *workersCollector) Collect(ch chan<- prometheus.Metric) {
	servers, err := c.insp.Servers()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("list asynq servers: %w", err))
		return
	}
	queues, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("list asynq queues: %w", err))
		return
	}
	// The service's own queues always, so that an alert on them has a
	// series even before Redis has seen a task on one.
	queues = append(queues, worker.QueueSmall, worker.QueueLarge, worker.QueueExports)
	for _, q := range countProcesses(servers, queues) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(q.n), q.queue)
	}
}

type queueProcesses struct {
	queue string
	n     int
}

// countProcesses counts, per queue, the distinct processes (host and pid)
// whose servers serve it: a process runs one Asynq server per queue. Every
// queue in known is listed, at 0 when no process serves it.
func countProcesses(servers []*asynq.ServerInfo, known []string) []queueProcesses {
	procs := map[string]map[string]bool{}
	for _, q := range known {
		procs[q] = map[string]bool{}
	}
	for _, s := range servers {
		for q := range s.Queues {
			if procs[q] == nil {
				procs[q] = map[string]bool{}
			}
			procs[q][fmt.Sprintf("%s/%d", s.Host, s.PID)] = true
		}
	}
	out := make([]queueProcesses, 0, len(procs))
	for q, p := range procs {
		out = append(out, queueProcesses{queue: q, n: len(p)})
	}
	slices.SortFunc(out, func(a, b queueProcesses) int { return cmp.Compare(a.queue, b.queue) })
	return out
}
