package web

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetreg/lessee"
)

type jobCounts map[lessee.JobState]int

func (c jobCounts) JobCounts(context.Context) (map[lessee.JobState]int, error) {
	if c == nil {
		return nil, errors.New("database is down")
	}
	return c, nil
}

func TestJobsCollector(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		c := NewJobsCollector(jobCounts{lessee.JobCompleted: 7, lessee.JobRefused: 2, lessee.JobRunning: 1})
		want := `# HELP lessee_jobs Jobs on record by state (queued, running, completed, refused), for the whole service.
# TYPE lessee_jobs gauge
lessee_jobs{state="completed"} 7
lessee_jobs{state="queued"} 0
lessee_jobs{state="refused"} 2
lessee_jobs{state="running"} 1
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "lessee_jobs"); err != nil {
			t.Error(err)
		}
	})
	t.Run("ErrDatabaseDown", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewJobsCollector(jobCounts(nil)))
		if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "database is down") {
			t.Fatalf("gather = %v, want the database's error", err)
		}
	})
}
