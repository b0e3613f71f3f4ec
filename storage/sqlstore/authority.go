package sqlstore

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/fleetreg/lessee"
)

// This file keeps what a chunk read of the authority (enterprises with their
// terms, the delegations they give or hold) for the chunks after it. The
// single-change API reads the same few organisations for every call, and
// those two reads were a quarter of a call's statements. A trigger on each
// authority table raises authority_generation on every change, and a chunk
// reads the generation in the statement that locks its vehicles: what was
// read under that generation is what the tables would answer, so a revoked
// delegation or role takes effect on the first chunk after its commit,
// exactly as without the cache.

// authorityCacheMax bounds the organisations kept: past it the cache starts
// over (a file naming thousands of organisations gains nothing from it).
const authorityCacheMax = 10_000

// authorityCache is what was read of each organisation's authority under
// one generation of the authority tables. Safe for concurrent use.
type authorityCache struct {
	mu         sync.Mutex
	generation int64
	byOrg      map[string]authorityEntry
}

// authorityEntry is one organisation's authority: its enterprise (nil when
// it is none) and every delegation in which it is fleet owner or delegate.
type authorityEntry struct {
	enterprise  *lessee.Enterprise
	delegations []lessee.Delegation
}

// lookup returns the entries of orgnrs kept under generation and the
// orgnrs it has none for. A generation older than the cache's (a chunk
// that read it before a concurrent change committed) finds nothing.
func (c *authorityCache) lookup(generation int64, orgnrs []string) (map[string]authorityEntry, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return nil, orgnrs
	}
	found := make(map[string]authorityEntry, len(orgnrs))
	var missing []string
	for _, o := range orgnrs {
		if e, ok := c.byOrg[o]; ok {
			found[o] = e
		} else {
			missing = append(missing, o)
		}
	}
	return found, missing
}

// keep stores entries read under generation; a newer generation replaces
// everything kept, an older one is not kept.
func (c *authorityCache) keep(generation int64, entries map[string]authorityEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation < c.generation {
		return
	}
	if generation > c.generation || len(c.byOrg)+len(entries) > authorityCacheMax {
		c.generation, c.byOrg = generation, make(map[string]authorityEntry, len(entries))
	}
	for o, e := range entries {
		c.byOrg[o] = e
	}
}

// loadAuthority fills st with the enterprises of orgnrs and the delegations
// they give or hold, from cache (under generation; 0 is unknown and reads
// the tables) or from the tables, keeping what it read.
func (w *chunkTx) loadAuthority(ctx context.Context, st *lessee.State, orgnrs []string, generation int64) error {
	orgnrs = dedupe(orgnrs)
	var entries map[string]authorityEntry
	missing := orgnrs
	if w.authority != nil && generation > 0 {
		entries, missing = w.authority.lookup(generation, orgnrs)
	}
	if len(missing) > 0 {
		read, err := readAuthority(ctx, w.tx, missing)
		if err != nil {
			return err
		}
		if w.authority != nil && generation > 0 {
			w.authority.keep(generation, read)
		}
		if entries == nil {
			entries = read
		} else {
			for o, e := range read {
				entries[o] = e
			}
		}
	}
	st.Enterprises = make(map[string]*lessee.Enterprise, len(entries))
	var dels []lessee.Delegation
	for o, e := range entries {
		if e.enterprise != nil {
			// A copy: the cached one is shared between chunks.
			ent := *e.enterprise
			ent.Terms = slices.Clone(ent.Terms)
			st.Enterprises[o] = &ent
		}
		dels = append(dels, e.delegations...)
	}
	addDelegations(st, dels)
	return nil
}

// readAuthority reads the authority of orgnrs from the tables, one entry
// per orgnr.
func readAuthority(ctx context.Context, q queryer, orgnrs []string) (map[string]authorityEntry, error) {
	ents, err := loadEnterprises(ctx, q, orgnrs)
	if err != nil {
		return nil, err
	}
	dels, err := readDelegations(ctx, q, orgnrs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]authorityEntry, len(orgnrs))
	for _, o := range orgnrs {
		out[o] = authorityEntry{enterprise: ents[o]}
	}
	for _, d := range dels {
		for _, o := range []string{d.FleetOwner, d.Delegate} {
			if e, ok := out[o]; ok {
				e.delegations = append(e.delegations, d)
				out[o] = e
			}
		}
	}
	return out, nil
}

// addDelegations adds dels to st once each (a delegation between two of a
// chunk's organisations comes from both), ordered by fleet owner,
// delegate and start.
func addDelegations(st *lessee.State, dels []lessee.Delegation) {
	slices.SortFunc(dels, func(a, b lessee.Delegation) int {
		if c := strings.Compare(a.FleetOwner, b.FleetOwner); c != 0 {
			return c
		}
		if c := strings.Compare(a.Delegate, b.Delegate); c != 0 {
			return c
		}
		return strings.Compare(string(a.ValidFrom), string(b.ValidFrom))
	})
	dels = slices.CompactFunc(dels, func(a, b lessee.Delegation) bool {
		return a.FleetOwner == b.FleetOwner && a.Delegate == b.Delegate && a.ValidFrom == b.ValidFrom
	})
	for _, d := range dels {
		k := [2]string{d.FleetOwner, d.Delegate}
		st.Delegations[k] = append(st.Delegations[k], d)
	}
}
