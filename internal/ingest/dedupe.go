package ingest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Dedupe keys are namespaced so an Idempotency-Key never collides with an
// event id of the same spelling, and by tenant, so that what one tenant
// names can never match, claim or reveal what another named. The tenant's
// length comes first, so no tenant and key pair spells another's.
func idempotencyDedupeKey(tenant, key string) string { return dedupeKey("k", tenant, key) }
func idDedupeKey(tenant, id string) string           { return dedupeKey("i", tenant, id) }

func dedupeKey(kind, tenant, name string) string {
	return kind + ":" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + name
}

// dedupe is the index of dedupe keys seen within the window, mapping each to
// the id of the event that first used it, plus the keys being written right
// now, so two concurrent identical requests cannot both produce.
type dedupe struct {
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	seen     map[string]seenEntry
	order    []orderEntry // insertion order, to expire entries cheaply
	inflight map[string]chan struct{}
}

type seenEntry struct {
	id string
	at time.Time
}

type orderEntry struct {
	key string
	at  time.Time
}

func newDedupe(window time.Duration, now func() time.Time) *dedupe {
	return &dedupe{
		window:   window,
		now:      now,
		seen:     make(map[string]seenEntry),
		inflight: make(map[string]chan struct{}),
	}
}

// claim is the outcome of acquiring a set of keys: for each key either the
// id of the event that already used it, or ownership until release.
type claim struct {
	d     *dedupe
	dups  map[string]string // key -> original event id
	owned []string
}

// acquire takes every key in keys that is not a duplicate, waiting while
// another request writes one of them. Keys are taken in sorted order so two
// requests with overlapping keys cannot deadlock. The caller must call
// release on the returned claim unless acquire returns an error.
func (d *dedupe) acquire(ctx context.Context, keys []string) (*claim, error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	c := &claim{d: d, dups: make(map[string]string)}
	for _, k := range keys {
		if err := d.acquireOne(ctx, c, k); err != nil {
			c.release(nil)
			return nil, err
		}
	}
	return c, nil
}

func (d *dedupe) acquireOne(ctx context.Context, c *claim, key string) error {
	for {
		d.mu.Lock()
		if e, ok := d.lookup(key); ok {
			d.mu.Unlock()
			c.dups[key] = e.id
			return nil
		}
		wait, busy := d.inflight[key]
		if !busy {
			d.inflight[key] = make(chan struct{})
			d.mu.Unlock()
			c.owned = append(c.owned, key)
			return nil
		}
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lookup returns the unexpired entry of key. d.mu must be held.
func (d *dedupe) lookup(key string) (seenEntry, bool) {
	e, ok := d.seen[key]
	if !ok || !e.at.After(d.now().Add(-d.window)) {
		return seenEntry{}, false
	}
	return e, true
}

// release records the owned keys listed in stored (key -> event id) as seen
// and gives up every owned key; waiters re-check and, for a key that was not
// stored, take it over.
func (c *claim) release(stored map[string]string) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, k := range c.owned {
		if id, ok := stored[k]; ok {
			d.add(k, id, now)
		}
		close(d.inflight[k])
		delete(d.inflight, k)
	}
	c.owned = nil
	d.expire(now)
}

// load adds an entry read back from the events topic, keeping the earliest
// event of a key as its original.
func (d *dedupe) load(key, id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.seen[key]; ok && !at.Before(e.at) {
		return
	}
	d.add(key, id, at)
}

// add records key. d.mu must be held.
func (d *dedupe) add(key, id string, at time.Time) {
	d.seen[key] = seenEntry{id: id, at: at}
	d.order = append(d.order, orderEntry{key, at})
}

// expire drops entries older than the window from the front of the
// insertion order. Entries loaded out of time order may stay a little
// longer; lookup ignores them once expired. d.mu must be held.
func (d *dedupe) expire(now time.Time) {
	cutoff := now.Add(-d.window)
	n := 0
	for n < len(d.order) && !d.order[n].at.After(cutoff) {
		o := d.order[n]
		if e, ok := d.seen[o.key]; ok && e.at.Equal(o.at) {
			delete(d.seen, o.key)
		}
		n++
	}
	clear(d.order[:n]) // let the dropped keys be collected
	d.order = d.order[n:]
}

// size is the number of keys held, expired or not.
func (d *dedupe) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}
