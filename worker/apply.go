package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/validate"
)

// progressFunc is told how far a job has come after every chunk.
type progressFunc func(done, total int)

// taskProgress writes a job's progress as the Asynq task result, which
// asynqmon shows beside the task. Tasks built in tests have no writer.
func taskProgress(t *asynq.Task) progressFunc {
	w := t.ResultWriter()
	if w == nil {
		return nil
	}
	return func(done, total int) {
		b, _ := json.Marshal(struct {
			RowsDone  int `json:"rows_done"`
			RowsTotal int `json:"rows_total"`
		}{done, total})
		// Progress is informational: a failed write must not fail the job.
		_, _ = w.Write(b)
	}
}

// stageTimes adds up where a file's time went, for the "rows applied" and
// "file processed" log lines (and `lessee bench`). Reading and validating
// run ahead of applying, so the stages overlap and may sum to more than
// the wall time.
type stageTimes struct {
	read, validate, apply time.Duration
}

// parsedChunk is a chunk of validated rows waiting to be applied.
type parsedChunk struct {
	rows  []lessee.Row
	start int // index of the first row
}

// applyRows validates and applies the rows after the job's checkpoint, one
// transaction per chunk. A goroutine reads and parses the next chunk while
// the current one is applied; chunks are applied one at a time in file
// order, so per-vehicle order is kept, and at most three chunks are in
// memory.
func (h *Handler) applyRows(ctx context.Context, job lessee.Job, src upload, progress progressFunc) (stageTimes, error) {
	var times stageTimes
	table, _, err := h.openUpload(ctx, src)
	if err != nil {
		return times, fmt.Errorf("open file: %w", err)
	}
	defer table.Close()

	vjob := validationJob(job)
	rules := rulesFor(job.Mode)
	checkpoint := job.RowsDone
	ctx, cancel := context.WithCancel(ctx)
	chunks := make(chan parsedChunk, 1)
	readErr := make(chan error, 1)
	var readTimes stageTimes
	go func() {
		defer close(chunks)
		readErr <- h.readChunks(ctx, table, rules, vjob, checkpoint, chunks, &readTimes)
	}()
	defer func() {
		// Stop the reader and wait for it before the table is closed.
		cancel()
		for range chunks {
		}
	}()

	for c := range chunks {
		start := time.Now()
		var decided time.Duration
		err := h.store.ApplyChunk(ctx, job.ID, c.start, validate.KeysFor(vjob, c.rows), func(st *lessee.State) lessee.Decision {
			t := time.Now()
			out := rules.decide(h.cfg.Validate, vjob, st, c.rows)
			decided = time.Since(t)
			return out
		})
		if err != nil {
			return times, fmt.Errorf("apply rows %d-%d: %w", c.start, c.start+len(c.rows)-1, err)
		}
		times.validate += decided
		times.apply += time.Since(start) - decided
		checkpoint = c.start + len(c.rows)
		if progress != nil {
			progress(checkpoint, job.RowsTotal)
		}
	}
	if err := <-readErr; err != nil {
		return times, err
	}
	times.read, times.validate = readTimes.read, times.validate+readTimes.validate
	return times, nil
}

// readChunks reads and parses the rows from index from on and sends them
// in chunks of the configured size.
func (h *Handler) readChunks(ctx context.Context, table ingest.Table, rules rules, vjob validate.Job, from int, out chan<- parsedChunk, times *stageTimes) error {
	send := func(c parsedChunk) error {
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := parsedChunk{rows: make([]lessee.Row, 0, h.cfg.ChunkSize), start: from}
	for {
		t := time.Now()
		raw, err := table.Next()
		times.read += time.Since(t)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The first pass read this file cleanly, so this is the disk.
			return fmt.Errorf("read rows: %w", err)
		}
		if raw.Index < from {
			continue
		}
		t = time.Now()
		c.rows = append(c.rows, rules.parse(h.cfg.Validate, vjob, raw))
		times.validate += time.Since(t)
		if len(c.rows) == h.cfg.ChunkSize {
			if err := send(c); err != nil {
				return err
			}
			c = parsedChunk{rows: make([]lessee.Row, 0, h.cfg.ChunkSize), start: c.start + len(c.rows)}
		}
	}
	if len(c.rows) > 0 {
		return send(c)
	}
	return nil
}
