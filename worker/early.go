package worker

import (
	"context"
	"fmt"
	"slices"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/receipt"
)

// earlyReceipt writes a job's receipt lines while its chunks are applied,
// from each chunk's outcomes as it commits, in a goroutine of its own: the
// receipt is then ready when the last chunk commits instead of being
// written from the stored results afterwards (for a million-row XLSX file,
// about a quarter of the file's time). Only an attempt that applies every
// row itself writes one; a resumed job's receipt is written from the
// stored results, which hold the same lines.
type earlyReceipt struct {
	draft  *receipt.Draft
	header []string     // the user's header for the XLSX receipt; nil: standard columns
	table  ingest.Table // the records, stepped in line with the outcomes for their cells; nil for CSV
	chunks chan []lessee.Outcome
	done   chan struct{}
	err    error // set before done closes
	lines  int   // written, set before done closes
}

// startEarlyReceipt starts the receipt of job, which no chunk has been
// applied of yet. It returns nil, and the receipt is written at the end,
// when the receipt cannot start (it logs why).
func (h *Handler) startEarlyReceipt(ctx context.Context, job lessee.Job, src upload) *earlyReceipt {
	r := &earlyReceipt{chunks: make(chan []lessee.Outcome, 2), done: make(chan struct{})}
	var ot ingest.OriginalTable
	if job.Format == lessee.FormatXLSX && src.path != "" && job.Mode != lessee.ModeSnapshot {
		table, info, err := h.openUpload(ctx, src)
		if err != nil {
			h.log.Warn("receipt left for the end: cannot reopen the file", "job_id", job.ID, "err", err)
			return nil
		}
		if t, ok := table.(ingest.OriginalTable); ok {
			r.table, ot, r.header = table, t, info.Header
		} else {
			_ = table.Close() // read only
		}
	}
	draft, err := h.publisher().NewDraft(job, r.header)
	if err != nil {
		if r.table != nil {
			_ = r.table.Close() // read only
		}
		h.log.Warn("receipt left for the end: cannot start it", "job_id", job.ID, "err", err)
		return nil
	}
	r.draft = draft
	go r.write(ot)
	return r
}

// write writes the lines of every chunk sent, in row order, until the
// chunks end or a line fails; after a failure it takes and drops the rest.
func (r *earlyReceipt) write(ot ingest.OriginalTable) {
	defer close(r.done)
	w := r.draft.Lines()
	for outs := range r.chunks {
		if r.err != nil {
			continue
		}
		slices.SortFunc(outs, func(a, b lessee.Outcome) int { return a.Index - b.Index })
		for _, o := range outs {
			if ot == nil {
				r.err = w.Write(o.Result)
			} else {
				var cells []string
				if cells, r.err = originalCells(ot, o.Result); r.err == nil {
					r.err = w.WriteOriginal(cells, o.Result)
				}
			}
			if r.err != nil {
				r.err = fmt.Errorf("row %d: %w", o.Line, r.err)
				break
			}
			r.lines++
		}
	}
}

// add hands the writer one committed chunk's outcomes.
func (r *earlyReceipt) add(ctx context.Context, outcomes []lessee.Outcome) error {
	select {
	case r.chunks <- outcomes:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish waits for the lines sent so far and returns the draft when it
// holds exactly rows lines; otherwise why not. The caller closes the
// receipt either way.
func (r *earlyReceipt) finish(rows int) (*receipt.Draft, []string, error) {
	close(r.chunks)
	<-r.done
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.lines != rows {
		return nil, nil, fmt.Errorf("%d lines written for %d rows", r.lines, rows)
	}
	return r.draft, r.header, nil
}

// close releases the draft and the records; safe after finish and on a
// receipt whose chunks never ended (it stops the writer first).
func (r *earlyReceipt) close() {
	select {
	case <-r.done:
	default:
		close(r.chunks)
		<-r.done
	}
	r.draft.Close()
	if r.table != nil {
		_ = r.table.Close() // read only
	}
}
