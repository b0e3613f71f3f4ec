package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fleetreg/lessee"
)

// The single-change API commits changes in groups: a change waits while
// the transactions in flight run, and the changes that came meanwhile go
// in one transaction together (each still decided alone, on its own
// vehicle). One change alone costs what it did; many concurrent changes
// cost a few round trips between them instead of a few each, which is
// where a single change's time goes.

// Defaults for Config.Batch.
const (
	// DefaultBatchSize bounds the changes of one transaction: more would
	// hold more row locks for longer, delaying files' chunks.
	DefaultBatchSize = 64
	// DefaultBatchesInFlight is how many transactions of changes run at
	// once: enough to keep a 2–8 core database busy while the next group
	// gathers.
	DefaultBatchesInFlight = 4
	// batchTimeout bounds one group's transaction, whatever its callers'
	// deadlines (their changes may be applied even when they gave up).
	batchTimeout = 30 * time.Second
)

// BatchConfig tunes the grouping of changes.
type BatchConfig struct {
	Size     int // changes per transaction at most; zero: DefaultBatchSize
	InFlight int // transactions at once at most; zero: DefaultBatchesInFlight
}

// batchApplier is the part of Store the grouping needs.
type batchApplier interface {
	ApplyBatch(ctx context.Context, changes []lessee.APIChange) ([]lessee.APIResult, error)
}

// pendingChange is a change waiting for its group's transaction.
type pendingChange struct {
	ctx    context.Context
	change lessee.APIChange
	done   chan changeResult
}

type changeResult struct {
	lessee.APIResult
	err error // the transaction's, for a change applied alone
}

// batcher gathers changes into groups and applies them.
type batcher struct {
	store    batchApplier
	cfg      BatchConfig
	observe  func(size int) // counts each group's size; may be nil
	mu       sync.Mutex
	queue    []*pendingChange
	inFlight int
}

func newBatcher(store batchApplier, cfg BatchConfig, observe func(int)) *batcher {
	if cfg.Size <= 0 {
		cfg.Size = DefaultBatchSize
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultBatchesInFlight
	}
	return &batcher{store: store, cfg: cfg, observe: observe}
}

// apply applies one change with whatever changes come with it and returns
// what became of it. An error is the transaction's: the change was not
// applied.
func (b *batcher) apply(ctx context.Context, c lessee.APIChange) (lessee.APIResult, error) {
	p := &pendingChange{ctx: ctx, change: c, done: make(chan changeResult, 1)}
	b.enqueue(false, p)
	r := <-p.done
	return r.APIResult, r.err
}

// enqueue adds changes to the queue (in front: changes that yielded to an
// earlier one of their group keep their turn) and starts a group's
// transaction unless enough run.
func (b *batcher) enqueue(front bool, ps ...*pendingChange) {
	b.mu.Lock()
	if front {
		b.queue = append(ps, b.queue...)
	} else {
		b.queue = append(b.queue, ps...)
	}
	start := b.inFlight < b.cfg.InFlight
	if start {
		b.inFlight++
	}
	b.mu.Unlock()
	if start {
		go b.drain()
	}
}

// drain applies groups from the queue until it is empty.
func (b *batcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.cfg.Size)
		if n == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		group := make([]*pendingChange, n)
		copy(group, b.queue)
		b.queue = b.queue[n:]
		b.mu.Unlock()
		b.applyGroup(group)
	}
}

// applyGroup applies a group in one transaction. Changes whose callers gave
// up before it started are left out; changes that yielded to an earlier
// one of the group go back to the queue's front. When the transaction
// fails, each change is tried alone, so that one change's failure is its
// own.
func (b *batcher) applyGroup(group []*pendingChange) {
	live := group[:0:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			p.done <- changeResult{err: err}
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	changes := make([]lessee.APIChange, len(live))
	for i, p := range live {
		changes[i] = p.change
	}
	if b.observe != nil {
		b.observe(len(changes))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), batchTimeout)
	defer cancel()
	results, err := b.applyBatch(ctx, changes)
	if err != nil && len(live) > 1 {
		for _, p := range live {
			r, err := b.applyBatch(ctx, []lessee.APIChange{p.change})
			if err != nil {
				p.done <- changeResult{err: err}
				continue
			}
			b.deliver(p, r[0])
		}
		return
	}
	if err != nil {
		live[0].done <- changeResult{err: err}
		return
	}
	var again []*pendingChange
	for i, p := range live {
		if results[i].Again {
			again = append(again, p)
			continue
		}
		b.deliver(p, results[i])
	}
	if len(again) > 0 {
		b.enqueue(true, again...)
	}
}

// applyBatch is the store's ApplyBatch, with a panic (a bug in deciding a
// change) turned into an error: it runs on no request's goroutine, where
// net/http would have recovered it, and must not take the process down.
func (b *batcher) applyBatch(ctx context.Context, changes []lessee.APIChange) (results []lessee.APIResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("apply changes: panic: %v\n%s", p, debug.Stack())
		}
	}()
	return b.store.ApplyBatch(ctx, changes)
}

// deliver answers p with r, or puts it back in the queue when it yielded.
func (b *batcher) deliver(p *pendingChange, r lessee.APIResult) {
	if r.Again {
		b.enqueue(true, p)
		return
	}
	p.done <- changeResult{APIResult: r}
}
