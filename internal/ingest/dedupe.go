package ingest

import (
	"context"
	"crypto/sha256"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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

// keyHash is what the index stores of a namespaced dedupe key: the first
// 16 bytes of its SHA-256. A key of up to 255 bytes plus its namespace
// costs 16 bytes, and a collision needs about 2^64 chosen keys, so a
// tenant cannot craft a key that matches another's (docs/design/idempotency.md).
type keyHash [16]byte

func hashKey(key string) keyHash {
	sum := sha256.Sum256([]byte(key))
	return keyHash(sum[:16])
}

// indexShards spreads the index over independently locked maps, so
// concurrent requests and the events-topic tail rarely wait for each other.
const indexShards = 64

// indexBuckets is how many time buckets the window is cut into: expiry
// drops a whole bucket's map at once, with no per-entry bookkeeping. An
// entry lives between one window and one window plus a bucket; lookup
// checks its time, so it is never answered past its window.
const indexBuckets = 8

// dedupe is the index of dedupe keys seen within the window, mapping each to
// the id of the event that first used it, plus the keys being written right
// now, so two concurrent identical requests cannot both produce.
type dedupe struct {
	window time.Duration
	bucket time.Duration // window / indexBuckets
	now    func() time.Time
	shards [indexShards]shard
	// nextExpire is when expire next looks at the buckets (unix ms).
	nextExpire atomic.Int64

	mu       sync.Mutex
	inflight map[string]chan struct{}
}

// shard holds the entries whose hash starts with its number, one map per
// time bucket (the entry's time divided by dedupe.bucket).
type shard struct {
	mu      sync.Mutex
	buckets map[int64]map[keyHash]seenEntry
}

// seenEntry is the original event of a key. Both keys of one event (its id
// and its Idempotency-Key) share the id's bytes.
type seenEntry struct {
	id string
	at int64 // unix milliseconds
}

func newDedupe(window time.Duration, now func() time.Time) *dedupe {
	d := &dedupe{
		window:   window,
		bucket:   max(window/indexBuckets, time.Millisecond),
		now:      now,
		inflight: make(map[string]chan struct{}),
	}
	for i := range d.shards {
		d.shards[i].buckets = make(map[int64]map[keyHash]seenEntry)
	}
	return d
}

func (d *dedupe) shardOf(h keyHash) *shard { return &d.shards[h[0]%indexShards] }

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
	h := hashKey(key)
	for {
		d.mu.Lock()
		if id, ok := d.lookup(h); ok {
			d.mu.Unlock()
			c.dups[key] = id
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

// known reports whether every key is in the index, unexpired.
func (d *dedupe) known(keys []string) bool {
	for _, k := range keys {
		if _, ok := d.lookup(hashKey(k)); !ok {
			return false
		}
	}
	return true
}

// lookup returns the original event id of an unexpired key.
func (d *dedupe) lookup(h keyHash) (string, bool) {
	cutoff := d.now().Add(-d.window).UnixMilli()
	s := d.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(h)
	if !ok || e.at <= cutoff {
		return "", false
	}
	return e.id, true
}

// get finds h in any bucket. s.mu must be held.
func (s *shard) get(h keyHash) (seenEntry, bool) {
	for _, m := range s.buckets {
		if e, ok := m[h]; ok {
			return e, true
		}
	}
	return seenEntry{}, false
}

// release records the owned keys listed in stored (key -> event id) as seen
// and gives up every owned key; waiters re-check and, for a key that was not
// stored, take it over.
func (c *claim) release(stored map[string]string) {
	d := c.d
	now := d.now()
	for _, k := range c.owned {
		if id, ok := stored[k]; ok {
			d.load(hashKey(k), id, now)
		}
	}
	d.mu.Lock()
	for _, k := range c.owned {
		close(d.inflight[k])
		delete(d.inflight, k)
	}
	d.mu.Unlock()
	c.owned = nil
	d.expire(now)
}

// load adds the key h of event id at time at, keeping the earliest event of
// a key as its original: the tail of the events topic reads back what this
// process wrote, and what another process wrote for the same key.
func (d *dedupe) load(h keyHash, id string, at time.Time) {
	ms := at.UnixMilli()
	s := d.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.get(h); ok {
		if e.at <= ms {
			return
		}
		delete(s.buckets[e.at/d.bucket.Milliseconds()], h)
	}
	b := ms / d.bucket.Milliseconds()
	m := s.buckets[b]
	if m == nil {
		m = make(map[keyHash]seenEntry)
		s.buckets[b] = m
	}
	m[h] = seenEntry{id: id, at: ms}
}

// expire drops the buckets that end before the window. It looks at most
// once a second, or once a bucket if buckets are shorter.
func (d *dedupe) expire(now time.Time) {
	next := d.nextExpire.Load()
	if now.UnixMilli() < next || !d.nextExpire.CompareAndSwap(next, now.Add(min(d.bucket, time.Second)).UnixMilli()) {
		return
	}
	cutoff := now.Add(-d.window).UnixMilli()
	width := d.bucket.Milliseconds()
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for b := range s.buckets {
			if (b+1)*width <= cutoff {
				delete(s.buckets, b)
			}
		}
		s.mu.Unlock()
	}
}

// size is the number of keys held, expired or not.
func (d *dedupe) size() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for _, m := range s.buckets {
			n += len(m)
		}
		s.mu.Unlock()
	}
	return n
}

// each calls f for every unexpired entry, one shard locked at a time.
func (d *dedupe) each(f func(h keyHash, e seenEntry)) {
	cutoff := d.now().Add(-d.window).UnixMilli()
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for _, m := range s.buckets {
			for h, e := range m {
				if e.at > cutoff {
					f(h, e)
				}
			}
		}
		s.mu.Unlock()
	}
}
