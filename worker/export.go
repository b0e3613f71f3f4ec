package worker

// Fleet exports: exports/<orgnr>/fleet.csv is rewritten after changes to
// the fleet, debounced. The store counts changes per fleet
// (fleet_exports); every worker process runs an ExportScheduler that asks
// it every Interval which fleets are due and enqueues one task per fleet,
// and an Asynq server of its own on QueueExports whose ExportHandler
// writes the export with package export.
//
// A fleet is due once it changed since its last export and either has
// been quiet for Quiet or was last exported MaxWait ago or more (see
// sqlstore's DueExports). With the defaults (10 s, 5 s, 20 s) an export
// follows a change by at most MaxWait + Interval, plus the time to write
// up to two exports of the fleet (one may be running when the change
// comes): 30 s plus twice the export time. A burst of changes gives one
// export when it starts (the last is old), about one per MaxWait +
// Interval while it lasts, and one when it stops.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/objectkey"
)

// TypeExportFleet is the task type that rewrites one fleet's export.
const TypeExportFleet = "lessee:export_fleet"

// QueueExports is the queue of fleet exports. It has workers of its own
// (one per process), so that an export never waits behind a large file
// and a file never waits behind the export of a large fleet.
const QueueExports = "exports"

// ExportPayload names the fleet to export and its version (change count)
// when it was found due.
type ExportPayload struct {
	OrgNr   string `json:"orgnr"`
	Version int64  `json:"version"`
}

// ExportTaskID is the task id of orgnr's export: one per fleet, whatever
// the version, so that at most one export of a fleet is queued or running
// at a time across every worker process. Two exports of one fleet
// running at once could store the older fleet last. A task that runs
// after further changes reads them too; changes after it read the fleet
// make the fleet due again.
func ExportTaskID(orgnr string) string { return "export:" + orgnr }

// exportTimeout bounds one attempt; a million vehicles take seconds.
const exportTimeout = 30 * time.Minute

// exportMaxRetry is how often a failed export is retried (RetryDelay: about
// 14 minutes in all) before Asynq archives it; the scheduler then
// enqueues it again while the fleet is due (RecoverArchived).
const exportMaxRetry = 10

// NewExportFleetTask returns the task that exports p's fleet: on
// QueueExports, with the fleet's task id, and deleted once done, so that
// the fleet's next export can be enqueued at once.
func NewExportFleetTask(p ExportPayload) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshal export payload: %w", err)
	}
	return asynq.NewTask(TypeExportFleet, b,
		asynq.TaskID(ExportTaskID(p.OrgNr)),
		asynq.Queue(QueueExports),
		asynq.MaxRetry(exportMaxRetry),
		asynq.Timeout(exportTimeout),
	), nil
}

// ExportStore is what fleet exports need from SQL; *sqlstore.Store
// satisfies it.
type ExportStore interface {
	export.FleetSource
	exportDone
	dueExports
}

// exportDone records a written export.
type exportDone interface {
	// ExportDone records that an export including every change up to
	// version was written.
	ExportDone(ctx context.Context, orgnr string, version int64) error
}

// dueExports finds the fleets whose export is due.
type dueExports interface {
	// DueExports returns the fleet owners whose fleet changed since its
	// last export and whose last change is at or before quietSince or
	// whose last export is at or before exportedBefore (or missing).
	DueExports(ctx context.Context, quietSince, exportedBefore time.Time) ([]lessee.DueExport, error)
	// AgeExports makes due every export written before dayStart.
	AgeExports(ctx context.Context, dayStart time.Time) (int, error)
}

// ExportSchedule times fleet exports.
type ExportSchedule struct {
	// Interval is how often the scheduler looks for due exports. Negative
	// turns exports off.
	Interval time.Duration
	// Quiet is how long a fleet must go without a change before its
	// export is due.
	Quiet time.Duration
	// MaxWait is how old a fleet's last export may get while the fleet
	// keeps changing before a new one is due anyway.
	MaxWait time.Duration
}

// DefaultExportSchedule returns the production timing: a change is
// exported within a minute for fleets whose export takes up to about
// 10 s (a few hundred thousand vehicles).
func DefaultExportSchedule() ExportSchedule {
	return ExportSchedule{Interval: 10 * time.Second, Quiet: 5 * time.Second, MaxWait: 20 * time.Second}
}

// withDefaults fills zero fields from DefaultExportSchedule.
func (s ExportSchedule) withDefaults() ExportSchedule {
	d := DefaultExportSchedule()
	if s.Interval == 0 {
		s.Interval = d.Interval
	}
	if s.Quiet <= 0 {
		s.Quiet = d.Quiet
	}
	if s.MaxWait <= 0 {
		s.MaxWait = d.MaxWait
	}
	return s
}

// ExportHandler handles TypeExportFleet tasks: it writes the fleet's
// export, then records the payload's version as exported.
type ExportHandler struct {
	writer *export.Writer
	done   exportDone
	log    *slog.Logger
}

// NewExportHandler returns a handler that writes exports with w and
// records them in done.
func NewExportHandler(w *export.Writer, done exportDone, log *slog.Logger) *ExportHandler {
	return &ExportHandler{writer: w, done: done, log: log}
}

// ProcessTask implements asynq.Handler. A payload that names no valid
// organisation number is not retried; any other failure is, with the
// previous export left in place.
func (h *ExportHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ExportPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("decode export payload: %w: %w", err, asynq.SkipRetry)
	}
	if err := ident.OrgNr(p.OrgNr); err != nil {
		return fmt.Errorf("export payload: orgnr: %w: %w", err, asynq.SkipRetry)
	}
	log := h.log.With("orgnr", p.OrgNr, "version", p.Version)
	start := time.Now()
	rows, err := h.writer.Write(ctx, p.OrgNr)
	if err != nil {
		retried, _ := asynq.GetRetryCount(ctx)
		log.Warn("fleet export failed; will retry", "retried", retried, "err", err)
		return err
	}
	if err := h.done.ExportDone(ctx, p.OrgNr, p.Version); err != nil {
		// Written but not recorded: the retry writes it again.
		return fmt.Errorf("record export of %s: %w", p.OrgNr, err)
	}
	log.Info("fleet export written", "key", objectkey.Export(p.OrgNr), "vehicles", rows,
		"duration_ms", time.Since(start).Milliseconds())
	return nil
}

// ExportScheduler enqueues the exports that are due. Every worker process
// runs one; the task ids make their enqueues of one fleet one task.
type ExportScheduler struct {
	store   dueExports
	client  enqueuer
	archive archive
	sched   ExportSchedule
	log     *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Location is whose midnight starts a new day for the exports
	// (Europe/Oslo; UTC should it not load).
	Location *time.Location
}

// NewExportScheduler returns a scheduler that asks store for due exports
// and enqueues them on client; zero fields of sched take the defaults.
func NewExportScheduler(store dueExports, client enqueuer, sched ExportSchedule, log *slog.Logger) *ExportScheduler {
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		log.Warn("Europe/Oslo did not load; exports are renewed at midnight UTC", "err", err)
		loc = time.UTC
	}
	return &ExportScheduler{store: store, client: client, sched: sched.withDefaults(), log: log, Now: time.Now, Location: loc}
}

// dayStart is the start of now's day in the scheduler's location.
func (s *ExportScheduler) dayStart(now time.Time) time.Time {
	y, m, d := now.In(s.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, s.Location)
}

// RecoverArchived lets the scheduler replace a fleet's archived task (it
// ran out of retries, say through a long S3 outage), which would
// otherwise hold the fleet's task id until Asynq deletes it.
func (s *ExportScheduler) RecoverArchived(a archive) { s.archive = a }

// Tick enqueues a task for every due fleet that has none queued or
// running, and returns how many it enqueued. A fleet that cannot be
// enqueued does not stop the others; the first such error is returned.
func (s *ExportScheduler) Tick(ctx context.Context) (int, error) {
	now := s.Now()
	// A new day changes what every export says, even of a fleet nobody
	// touched: yesterday's exports are made due.
	if n, err := s.store.AgeExports(ctx, s.dayStart(now)); err != nil {
		return 0, err
	} else if n > 0 {
		s.log.Info("a new day: fleet exports written before it are due", "fleets", n)
	}
	due, err := s.store.DueExports(ctx, now.Add(-s.sched.Quiet), now.Add(-s.sched.MaxWait))
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, d := range due {
		ok, err := s.enqueue(ctx, ExportPayload{OrgNr: d.OrgNr, Version: d.Version})
		if err != nil {
			s.log.Warn("could not enqueue a fleet export", "orgnr", d.OrgNr, "version", d.Version, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}

// enqueue enqueues p's task and reports false when the fleet has one
// already (queued, running or retrying: it reads the fleet when it runs).
func (s *ExportScheduler) enqueue(ctx context.Context, p ExportPayload) (bool, error) {
	task, err := NewExportFleetTask(p)
	if err != nil {
		return false, err
	}
	_, err = s.client.EnqueueContext(ctx, task)
	if !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
		return err == nil, err
	}
	if s.archive == nil {
		return false, nil
	}
	id := ExportTaskID(p.OrgNr)
	info, err := s.archive.GetTaskInfo(QueueExports, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return false, nil // done since; the next tick sees whether it is due again
	case err != nil:
		return false, fmt.Errorf("task info of %s: %w", id, err)
	case info.State != asynq.TaskStateArchived:
		return false, nil
	}
	s.log.Warn("a fleet export ran out of retries; enqueueing it again", "orgnr", p.OrgNr, "last_error", info.LastErr)
	if err := s.archive.DeleteTask(QueueExports, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return false, fmt.Errorf("delete archived task %s: %w", id, err)
	}
	_, err = s.client.EnqueueContext(ctx, task)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil // another process was quicker
	}
	return err == nil, err
}

// Run ticks every Interval until ctx is done.
func (s *ExportScheduler) Run(ctx context.Context) {
	if s.sched.Interval < 0 {
		return
	}
	t := time.NewTicker(s.sched.Interval)
	defer t.Stop()
	for {
		if n, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("fleet export scheduling failed; retrying at the next tick", "err", err)
		} else if n > 0 {
			s.log.Debug("fleet exports enqueued", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startExports starts this process's fleet exports beside Serve's file
// queues: the export queue's server and the scheduler. It returns the
// function that stops them. Exports are off when the
// handler's store cannot export fleets or cfg.Exports.Interval is
// negative.
func startExports(ctx context.Context, redis asynq.RedisConnOpt, h *Handler, cfg ServerConfig, log *slog.Logger) (stop func(), err error) {
	store, ok := h.store.(ExportStore)
	if !ok || cfg.Exports.Interval < 0 {
		log.Info("fleet exports are off in this process")
		return func() {}, nil
	}
	// Spool files of a process that was killed; the temp dir is this
	// process's own.
	if err := removeExportSpools(h.cfg.TempDir); err != nil {
		log.Warn("could not remove old export spool files", "err", err)
	}
	w := export.New(store, h.objects, export.Config{TempDir: h.cfg.TempDir, Now: h.Now})
	mux := asynq.NewServeMux()
	mux.Use(Mask) // Classify is for files; an export only retries
	mux.Handle(TypeExportFleet, NewExportHandler(w, store, log))
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency:              1,
		Queues:                   map[string]int{QueueExports: 1},
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           RetryDelay,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   asynqLogger{log.With("queue", QueueExports)},
		LogLevel:                 asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start %s queue worker: %w", QueueExports, err)
	}
	client := asynq.NewClient(redis)
	insp := asynq.NewInspector(redis)
	sched := NewExportScheduler(store, client, cfg.Exports, log)
	sched.RecoverArchived(insp)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sched.Run(sctx) }()
	return func() {
		cancel()
		<-done
		srv.Shutdown()
		_ = client.Close() // teardown: nothing is left to enqueue
		_ = insp.Close()
	}, nil
}

// removeExportSpools deletes export spool files left in dir ("" means
// os.TempDir) by a killed process.
func removeExportSpools(dir string) error {
	if dir == "" {
		return nil // shared with other programs: left to the system
	}
	return removeMatching(dir, export.TempPrefix+"*")
}
