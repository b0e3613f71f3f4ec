package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
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
// the current ones are applied; chunks commit one at a time in file order
// (up to ChunksInFlight of them in flight, see applyInTurn), so
// per-vehicle order is kept, and at most ChunksInFlight+2 chunks are in
// memory. Each committed chunk's outcomes go to early, when not nil.
func (h *Handler) applyRows(ctx context.Context, job lessee.Job, src upload, progress progressFunc, early *earlyReceipt) (stageTimes, error) {
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

	// A change file's chunks go two at a time: the next one locks, decides
	// and writes while the one before commits. A snapshot's chunks share
	// the rows that record which vehicles the file named, so they go one
	// at a time.
	depth := h.cfg.ChunksInFlight
	if job.Mode != lessee.ModeChanges {
		depth = 1
	}
	apply := func(ctx context.Context, c parsedChunk, turn lessee.ChunkTurn) (time.Duration, []lessee.Outcome, error) {
		var decided time.Duration
		var outcomes []lessee.Outcome
		err := h.store.ApplyChunkInTurn(ctx, job.ID, c.start, validate.KeysFor(vjob, c.rows), func(st *lessee.State) lessee.Decision {
			t := time.Now()
			out := rules.decide(h.cfg.Validate, vjob, st, c.rows)
			decided = time.Since(t)
			outcomes = out.Outcomes // as stored: the store blanks a dry run's change ids in place
			return out
		}, turn)
		return decided, outcomes, err
	}
	committed := func(done int, outcomes []lessee.Outcome) error {
		if progress != nil {
			progress(done, job.RowsTotal)
		}
		if early != nil {
			return early.add(ctx, outcomes)
		}
		return nil
	}
	if err := applyInTurn(ctx, chunks, depth, apply, committed, &times); err != nil {
		return times, err
	}
	if err := <-readErr; err != nil {
		return times, err
	}
	times.read, times.validate = readTimes.read, times.validate+readTimes.validate
	return times, nil
}

// chunkFlight is a chunk being applied.
type chunkFlight struct {
	c        parsedChunk
	locked   chan struct{} // closed once it holds its row locks, or gave up
	done     chan struct{} // closed once it has committed or failed
	err      error
	outcomes []lessee.Outcome // as committed
	decided  time.Duration    // time spent deciding, within took
	took     time.Duration
}

// applyInTurn applies chunks in file order with up to depth of them in
// flight: each is started once the one before holds its row locks, and
// commits after it (see lessee.ChunkTurn). committed is told the rows done
// and the outcomes after each chunk, in order; its error stops the rest.
// The first chunk to fail stops the rest, which roll back, and its error
// is returned.
func applyInTurn(ctx context.Context, chunks <-chan parsedChunk, depth int,
	apply func(context.Context, parsedChunk, lessee.ChunkTurn) (time.Duration, []lessee.Outcome, error),
	committed func(done int, outcomes []lessee.Outcome) error, times *stageTimes) error {
	depth = max(depth, 1)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // chunks still in flight after a failure roll back
		wg.Wait()
	}()
	var flights []*chunkFlight // oldest first
	finish := func() error {
		f := flights[0]
		flights = flights[1:]
		<-f.done
		if f.err != nil {
			return fmt.Errorf("apply rows %d-%d: %w", f.c.start, f.c.start+len(f.c.rows)-1, f.err)
		}
		times.validate += f.decided
		times.apply += f.took - f.decided
		return committed(f.c.start+len(f.c.rows), f.outcomes)
	}
	launch := func(c parsedChunk) {
		f := &chunkFlight{c: c, locked: make(chan struct{}), done: make(chan struct{})}
		var once sync.Once
		turn := lessee.ChunkTurn{Locked: func() { once.Do(func() { close(f.locked) }) }}
		if n := len(flights); n > 0 {
			prior := flights[n-1]
			turn.Prior = func(ctx context.Context) error {
				select {
				case <-prior.done:
					return prior.err
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(f.done)
			defer turn.Locked()
			start := time.Now()
			f.decided, f.outcomes, f.err = apply(ctx, c, turn)
			f.took = time.Since(start)
		}()
		flights = append(flights, f)
	}
	// One loop waits for whichever comes first: the oldest chunk's end
	// (reported at once, so progress never lags behind a commit), or, when
	// another may start, the next chunk. The next one may start once the
	// last one holds its row locks: a vehicle both name must be the
	// earlier chunk's first.
	for chunks != nil || len(flights) > 0 {
		var oldest, lastLocked <-chan struct{}
		var next <-chan parsedChunk
		switch n := len(flights); {
		case n == 0:
			next = chunks
		case n < depth && closed(flights[n-1].locked):
			oldest, next = flights[0].done, chunks
		case n < depth:
			oldest, lastLocked = flights[0].done, flights[n-1].locked
		default:
			oldest = flights[0].done
		}
		select {
		case <-oldest:
			if err := finish(); err != nil {
				return err
			}
		case <-lastLocked:
		case c, ok := <-next:
			if !ok {
				chunks = nil
				continue
			}
			launch(c)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
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
