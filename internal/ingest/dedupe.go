package ingest

import (
	"context"
	"crypto/sha256"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/envelope"
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
// costs 16 bytes. Matching a given key of another tenant is a second
// preimage, about 2^128 work; any collision at all among n keys has odds
// of about n²/2^129 (docs/design/idempotency.md).
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

// maxBucket keeps a time within its bucket within 32 bits of milliseconds.
const maxBucket = 24 * 24 * time.Hour

// dedupe is the index of dedupe keys seen within the window, mapping each to
// the id of the event that first used it, plus the keys this process is
// writing right now, so two concurrent identical requests cannot both
// produce.
type dedupe struct {
	window time.Duration
	bucket time.Duration // window / indexBuckets
	now    func() time.Time
	shards [indexShards]shard
	// nextExpire is when expire next looks at the buckets (unix ms).
	nextExpire atomic.Int64
}

// shard holds the entries whose hash starts with its number, one bucket
// per slice of time (the entry's time divided by dedupe.bucket).
type shard struct {
	mu       sync.Mutex
	buckets  map[int64]*timeBucket
	inflight map[keyHash]chan struct{}
}

// timeBucket holds the entries of one slice of time. A generated event id
// (envelope.NewID) is held as the 16 bytes it encodes, in gen; any other id
// as its text, in other. A time is held as milliseconds since the bucket's
// start, which fits 32 bits for buckets up to 49 days.
type timeBucket struct {
	gen   map[keyHash]genEntry
	other map[keyHash]otherEntry
}

type genEntry struct {
	off uint32
	id  [16]byte
}

type otherEntry struct {
	off uint32
	id  string
}

// seenEntry is the original event of a key.
type seenEntry struct {
	id string
	at int64 // unix milliseconds
}

func newDedupe(window time.Duration, now func() time.Time) *dedupe {
	d := &dedupe{
		window: window,
		bucket: min(max(window/indexBuckets, time.Millisecond), maxBucket),
		now:    now,
	}
	for i := range d.shards {
		d.shards[i].buckets = make(map[int64]*timeBucket)
		d.shards[i].inflight = make(map[keyHash]chan struct{})
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
	s := d.shardOf(h)
	for {
		s.mu.Lock()
		if id, ok := d.lookupLocked(s, h); ok {
			s.mu.Unlock()
			c.dups[key] = id
			return nil
		}
		wait, busy := s.inflight[h]
		if !busy {
			s.inflight[h] = make(chan struct{})
			s.mu.Unlock()
			c.owned = append(c.owned, key)
			return nil
		}
		s.mu.Unlock()
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

// busy reports whether a request of this process is writing key.
func (d *dedupe) busy(key string) bool {
	h := hashKey(key)
	s := d.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inflight[h]
	return ok
}

// lookup returns the original event id of an unexpired key.
func (d *dedupe) lookup(h keyHash) (string, bool) {
	s := d.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	return d.lookupLocked(s, h)
}

// lookupLocked is lookup with s, the shard of h, locked.
func (d *dedupe) lookupLocked(s *shard, h keyHash) (string, bool) {
	cutoff := d.now().Add(-d.window).UnixMilli()
	b, off, ok := s.get(h)
	if !ok || b*d.bucketMs()+int64(off) <= cutoff {
		return "", false
	}
	return s.buckets[b].id(h), true
}

func (d *dedupe) bucketMs() int64 { return d.bucket.Milliseconds() }

// get finds h in any bucket, and returns the bucket and the entry's time
// within it. s.mu must be held.
func (s *shard) get(h keyHash) (b int64, off uint32, ok bool) {
	for b, bk := range s.buckets {
		if e, ok := bk.gen[h]; ok {
			return b, e.off, true
		}
		if e, ok := bk.other[h]; ok {
			return b, e.off, true
		}
	}
	return 0, 0, false
}

// id is the event id of h, which bk holds.
func (bk *timeBucket) id(h keyHash) string {
	if e, ok := bk.gen[h]; ok {
		return envelope.IDFromCompact(e.id)
	}
	return bk.other[h].id
}

// release records the owned keys listed in stored (key -> event id) as seen
// and gives up every owned key; waiters re-check and, for a key that was not
// stored, take it over.
func (c *claim) release(stored map[string]string) {
	d := c.d
	now := d.now()
	for _, k := range c.owned {
		h := hashKey(k)
		s := d.shardOf(h)
		s.mu.Lock()
		if id, ok := stored[k]; ok {
			d.loadLocked(s, h, id, now)
		}
		close(s.inflight[h])
		delete(s.inflight, h)
		s.mu.Unlock()
	}
	c.owned = nil
	d.expire(now)
}

// load adds the key h of event id at time at, keeping the earliest event of
// a key as its original: the tail of the events topic reads back what this
// process wrote, and what another process wrote for the same key.
func (d *dedupe) load(h keyHash, id string, at time.Time) {
	s := d.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	d.loadLocked(s, h, id, at)
}

// loadLocked is load with s, the shard of h, locked.
func (d *dedupe) loadLocked(s *shard, h keyHash, id string, at time.Time) {
	ms, width := at.UnixMilli(), d.bucketMs()
	if b, off, ok := s.get(h); ok {
		if b*width+int64(off) <= ms {
			return
		}
		delete(s.buckets[b].gen, h)
		delete(s.buckets[b].other, h)
	}
	b := ms / width
	if ms < 0 {
		b-- // the floor, so off is never negative
	}
	off := uint32(ms - b*width)
	bk := s.buckets[b]
	if bk == nil {
		bk = &timeBucket{gen: make(map[keyHash]genEntry), other: make(map[keyHash]otherEntry)}
		s.buckets[b] = bk
	}
	if c, ok := envelope.CompactID(id); ok {
		bk.gen[h] = genEntry{off: off, id: c}
	} else {
		bk.other[h] = otherEntry{off: off, id: id}
	}
}

// expire drops the buckets that end before the window. It looks at most
// once a second, or once a bucket if buckets are shorter.
func (d *dedupe) expire(now time.Time) {
	next := d.nextExpire.Load()
	if now.UnixMilli() < next || !d.nextExpire.CompareAndSwap(next, now.Add(min(d.bucket, time.Second)).UnixMilli()) {
		return
	}
	cutoff := now.Add(-d.window).UnixMilli()
	width := d.bucketMs()
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
		for _, bk := range s.buckets {
			n += len(bk.gen) + len(bk.other)
		}
		s.mu.Unlock()
	}
	return n
}

// each calls f for every unexpired entry. A shard's entries are copied
// under its lock and f runs after, so a slow f (a snapshot's disk write)
// does not hold up requests.
func (d *dedupe) each(f func(h keyHash, e seenEntry)) {
	cutoff := d.now().Add(-d.window).UnixMilli()
	type entry struct {
		h keyHash
		e seenEntry
	}
	var buf []entry
	for i := range d.shards {
		s := &d.shards[i]
		buf = buf[:0]
		s.mu.Lock()
		for b, bk := range s.buckets {
			start := b * d.bucketMs()
			for h, e := range bk.gen {
				if at := start + int64(e.off); at > cutoff {
					buf = append(buf, entry{h, seenEntry{id: envelope.IDFromCompact(e.id), at: at}})
				}
			}
			for h, e := range bk.other {
				if at := start + int64(e.off); at > cutoff {
					buf = append(buf, entry{h, seenEntry{id: e.id, at: at}})
				}
			}
		}
		s.mu.Unlock()
		for _, x := range buf {
			f(x.h, x.e)
		}
	}
}
