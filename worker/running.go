package worker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hibiken/asynq"
)

// Running is a file this process's workers are on, as a shutdown reports
// it: which, and how far its committed chunks have come.
type Running struct {
	JobID string
	Key   string
	// RowsDone is the job's checkpoint: rows committed, by this attempt
	// or an earlier one. RowsTotal is 0 until the file has been read.
	RowsDone  int
	RowsTotal int
}

// runningFiles is the set of files being processed, kept in memory so
// that a shutdown can say what it waits for.
type runningFiles struct {
	// active counts the tasks inside the middleware chain, which may
	// still be at work (recording a failure) after processTask returned.
	active atomic.Int64

	mu   sync.Mutex
	jobs map[string]*Running
	// ended keeps the last progress of the files that end while a stop is
	// under way, so that it can report how far a file it cut off came.
	ended map[string]Running
}

func (r *runningFiles) begin(jobID, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs == nil {
		r.jobs = map[string]*Running{}
	}
	r.jobs[jobID] = &Running{JobID: jobID, Key: key}
}

func (r *runningFiles) end(jobID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.jobs[jobID]; j != nil && r.ended != nil {
		r.ended[jobID] = *j
	}
	delete(r.jobs, jobID)
}

// stopping starts keeping the progress of the files that end from now on.
func (r *runningFiles) stopping() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = map[string]Running{}
}

// latest returns the files' latest progress, running or ended since
// stopping.
func (r *runningFiles) latest(files []Running) []Running {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Running, len(files))
	for i, f := range files {
		out[i] = f
		if j := r.jobs[f.JobID]; j != nil {
			out[i] = *j
		} else if j, ok := r.ended[f.JobID]; ok {
			out[i] = j
		}
	}
	return out
}

// track returns a progressFunc that records a job's progress here, then
// passes it on to next (if any).
func (r *runningFiles) track(jobID string, next progressFunc) progressFunc {
	return func(done, total int) {
		r.mu.Lock()
		if j := r.jobs[jobID]; j != nil {
			j.RowsDone, j.RowsTotal = done, total
		}
		r.mu.Unlock()
		if next != nil {
			next(done, total)
		}
	}
}

// list returns the running files, by key.
func (r *runningFiles) list() []Running {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Running, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, *j)
	}
	slices.SortFunc(out, func(a, b Running) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Running returns the files this handler is processing now.
func (h *Handler) Running() []Running { return h.running.list() }

// countActive is the outermost middleware: it counts the tasks at work, so
// that a stop waits for all of their work, the middleware's included.
func (h *Handler) countActive(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		h.running.active.Add(1)
		defer h.running.active.Add(-1)
		return next.ProcessTask(ctx, t)
	})
}

// busy reports whether a task is at work.
func (h *Handler) busy() bool { return h.running.active.Load() > 0 }
