package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/validate"
)

// This file is what a snapshot adds to a change file: a first pass that
// records the vehicles the file names and checks it states one fleet, the
// safety threshold on the fleet's vehicles it leaves out, and the removal
// of those vehicles' lessees after the file's rows. Dry runs need nothing
// here: the store keeps their decisions aside (see sqlstore.ApplyChunk).

// snapshotStore is what a snapshot needs from SQL beyond a change file.
type snapshotStore interface {
	RecordSnapshotNames(ctx context.Context, jobID string, names []string) error
	FreezeAbsent(ctx context.Context, jobID, fleetOwner string, day lessee.Date, list bool) (absent, withLessee int, kept bool, err error)
	AbsentVehicles(ctx context.Context, jobID string, from, limit int) ([]lessee.AbsentVehicle, error)
	AuthorityState(ctx context.Context, orgnrs []string) (*lessee.State, error)
	DropScratch(ctx context.Context, jobID string) error
}

// rules are the parse and decide steps of a mode: one rules engine, two
// ways of stating what a row wants.
type rules struct {
	parse  func(validate.Config, validate.Job, lessee.RawRow) lessee.Row
	decide func(validate.Config, validate.Job, *lessee.State, []lessee.Row) lessee.Decision
}

func rulesFor(m lessee.Mode) rules {
	if m == lessee.ModeSnapshot {
		return rules{parse: validate.ParseSnapshotRow, decide: validate.DecideSnapshot}
	}
	return rules{parse: validate.ParseRow, decide: validate.Decide}
}

// namesBatch is how many identifiers the first pass records at a time.
const namesBatch = 5000

// snapshotPlan is what the first pass of a snapshot learnt.
type snapshotPlan struct {
	fleetOwner string // the one fleet owner the file states
	absent     int    // vehicles of the fleet the file leaves out, to be removed
}

// planSnapshot reads the whole snapshot once before anything is applied:
// it records every vehicle identifier the file names, refuses a file that
// names two fleet owners, and (until the job's first chunk commits)
// freezes the list of the fleet's vehicles with a lessee that the file
// leaves out, refusing the file when they exceed the threshold. A
// submitter who may not act for the fleet gets no list: its rows are each
// rejected with the authority code, and nothing of the fleet is shown.
func (h *Handler) planSnapshot(ctx context.Context, job lessee.Job, src upload) (snapshotPlan, *lessee.Error, error) {
	plan := snapshotPlan{fleetOwner: job.Submitter}
	table, _, err := h.openUpload(ctx, src)
	if err != nil {
		return plan, nil, fmt.Errorf("open file: %w", err)
	}
	defer table.Close()

	vjob := validationJob(job)
	fleetLine := 0
	names := make([]string, 0, namesBatch)
	flush := func() error {
		if err := h.store.RecordSnapshotNames(ctx, job.ID, names); err != nil {
			return fmt.Errorf("record snapshot names: %w", err)
		}
		names = names[:0]
		return nil
	}
	for {
		raw, err := table.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return plan, nil, fmt.Errorf("read rows: %w", err)
		}
		row := validate.ParseSnapshotRow(h.cfg.Validate, vjob, raw)
		names = append(names, row.Change.VIN, row.Change.RegistrationNumber)
		if len(names) >= namesBatch {
			if err := flush(); err != nil {
				return plan, nil, err
			}
		}
		f, ok := rowFleetOwner(raw, job.Submitter)
		switch {
		case !ok:
			// An invalid on_behalf_of is the row's own fault, reported on it.
		case fleetLine == 0:
			plan.fleetOwner, fleetLine = f, raw.Line
		case f != plan.fleetOwner:
			return plan, message.Refuse(lessee.CodeMixedFleetOwners, raw.Line,
				message.MixedFleetOwners, raw.Line, f, fleetLine, plan.fleetOwner), nil
		}
	}
	if err := flush(); err != nil {
		return plan, nil, err
	}

	// Only a submitter who may act for the fleet gets its absent vehicles
	// listed: the list, or the refusal naming them, would tell others
	// which of the fleet's vehicles have a lessee.
	st, err := h.store.AuthorityState(ctx, []string{job.Submitter, plan.fleetOwner})
	if err != nil {
		return plan, nil, fmt.Errorf("check authority: %w", err)
	}
	p := validate.Authorize(vjob, st, plan.fleetOwner, job.ProcessingDate)
	absent, withLessee, kept, err := h.store.FreezeAbsent(ctx, job.ID, plan.fleetOwner, job.ProcessingDate, p == nil)
	if err != nil {
		return plan, nil, err
	}
	plan.absent = absent
	switch {
	case kept:
		// A chunk has committed: the list (checked when it was frozen)
		// stays what it was, whatever has changed since.
	case p != nil:
		h.log.Info("snapshot: the submitter may not act for the fleet; no absent vehicles are removed",
			"job_id", job.ID, "fleet_owner", plan.fleetOwner, "code", p.Code)
	case absent > 0 && float64(absent)*100 > h.cfg.SnapshotMaxRemovals*float64(withLessee):
		limit := h.cfg.SnapshotMaxRemovals
		return plan, message.Refuse(lessee.CodeTooManyRemovals, 0, message.TooManyRemovals,
			absent, withLessee, plan.fleetOwner, fmt.Sprintf("%.1f", float64(absent)*100/float64(withLessee)),
			fmt.Sprintf("%g", limit)), nil
	}
	return plan, nil, nil
}

// rowFleetOwner is the fleet owner a snapshot row is for: its
// on_behalf_of, or the submitter when that is empty; false when
// on_behalf_of is not a valid organisation number.
func rowFleetOwner(raw lessee.RawRow, submitter string) (string, bool) {
	v := ident.NormaliseID(raw.Cells[lessee.ColOnBehalfOf].Value)
	if v == "" {
		return submitter, true
	}
	if ident.OrgNr(v) != nil {
		return "", false
	}
	return v, true
}

// applyAbsent removes, after the file's rows, the lessees of the fleet's
// vehicles the snapshot left out: the frozen list, in its order, in chunks
// through the same rules and transaction as the file's rows, each with an
// index after the file's records and no row number.
func (h *Handler) applyAbsent(ctx context.Context, job lessee.Job, plan snapshotPlan, progress progressFunc) error {
	vjob := validationJob(job)
	onBehalf := plan.fleetOwner
	if onBehalf == job.Submitter {
		onBehalf = ""
	}
	from := max(job.RowsDone-job.FileRows, 0)
	for from < plan.absent {
		page, err := h.store.AbsentVehicles(ctx, job.ID, from, h.cfg.ChunkSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("%w: absent vehicle %d of %d is missing from the frozen list", errPermanent, from, plan.absent)
		}
		rows := make([]lessee.Row, len(page))
		for i, v := range page {
			rows[i] = lessee.Row{
				Index: job.FileRows + v.Seq,
				Echo:  lessee.Echo{RegistrationNumber: v.RegistrationNumber, VIN: v.VIN},
				// Named by VIN alone: the list froze VINs, and a registration
				// number changed since must not make the row a mismatch.
				Change: lessee.Change{VIN: v.VIN, EndDate: job.ProcessingDate, OnBehalfOf: onBehalf},
			}
		}
		start := job.FileRows + from
		err = h.store.ApplyChunkInTurn(ctx, job.ID, start, validate.KeysFor(vjob, rows), func(st *lessee.State) lessee.Decision {
			return validate.DecideSnapshot(h.cfg.Validate, vjob, st, rows)
		}, lessee.ChunkTurn{})
		if err != nil {
			return fmt.Errorf("remove absent vehicles %d-%d: %w", from, from+len(rows)-1, err)
		}
		from += len(rows)
		if progress != nil {
			progress(job.FileRows+from, job.RowsTotal)
		}
	}
	return nil
}

// writeAbsentList writes the frozen absent list into a refusal receipt,
// so that the submitter sees which lessees the snapshot would have removed.
func (h *Handler) writeAbsentList(ctx context.Context, job lessee.Job, code lessee.Code, w *receipt.Lines) error {
	for from := 0; ; {
		page, err := h.store.AbsentVehicles(ctx, job.ID, from, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, v := range page {
			if err := w.Write(lessee.Result{
				Index: job.FileRows + v.Seq,
				Echo: lessee.Echo{Operation: string(lessee.OpRemove),
					RegistrationNumber: v.RegistrationNumber, VIN: v.VIN},
				Status:  lessee.StatusRejected,
				Code:    code,
				Message: message.Format(job.Language, message.AbsentFromSnapshot),
			}); err != nil {
				return err
			}
		}
		from = page[len(page)-1].Seq + 1
	}
}

// validationJob is what validation needs to know of a job.
func validationJob(job lessee.Job) validate.Job {
	return validate.Job{ID: job.ID, Submitter: job.Submitter, ProcessingDate: job.ProcessingDate, Now: job.Started,
		Language: job.Language}
}

// dropScratch removes a finished dry run's or snapshot's scratch rows. It
// only frees space, so a failure is logged, not returned.
func (h *Handler) dropScratch(ctx context.Context, job lessee.Job) {
	if job.Mode != lessee.ModeSnapshot && !job.DryRun {
		return
	}
	if err := h.store.DropScratch(ctx, job.ID); err != nil {
		h.log.Warn("could not drop a finished job's scratch rows", "job_id", job.ID,
			"err", ident.MaskText(strings.TrimSpace(err.Error())))
	}
}
