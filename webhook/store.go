package webhook

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// State is what a Store knows about a webhook-id.
type State int

// States returned by Store.Claim.
const (
	// Claimed: the id was unknown and is now claimed by the caller.
	Claimed State = iota
	// InFlight: another request claimed the id and has not finished.
	InFlight
	// Processed: a request with the id was processed.
	Processed
)

// Store remembers webhook-ids across requests. A Store shared by several
// receiver processes (Redis, a database table with a unique key) makes the
// dedupe hold across them; its Claim must be atomic.
type Store interface {
	// Claim claims id for lease unless it is claimed or processed, and says
	// which.
	Claim(ctx context.Context, id string, lease time.Duration) (State, error)
	// Done marks a claimed id processed, remembered for ttl.
	Done(ctx context.Context, id string, ttl time.Duration) error
	// Release forgets a claimed id whose processing failed.
	Release(ctx context.Context, id string) error
}

// DefaultMaxEntries is how many ids a NewMemoryStore remembers at most:
// about 150 MB when full. A receiver that takes more deliveries than that
// within its TTL should raise it (NewMemoryStoreMax) or share a Store.
const DefaultMaxEntries = 1_000_000

// expireBatch is how many expired ids each write drops, at most: expiry is
// spread over the writes instead of sweeping every id under the lock.
const expireBatch = 4

// MemoryStore is an in-process Store with expiry and a bound on the ids it
// remembers. Safe for concurrent use.
type MemoryStore struct {
	now func() time.Time
	max int

	mu  sync.Mutex
	ids map[string]*memEntry
	exp expiryHeap // every entry of ids, soonest expiry first
}

type memEntry struct {
	id      string
	state   State
	expires time.Time
	index   int // in exp
}

// NewMemoryStore returns an empty MemoryStore reading the clock with now
// (nil: time.Now) that remembers at most DefaultMaxEntries ids.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	return NewMemoryStoreMax(now, DefaultMaxEntries)
}

// NewMemoryStoreMax is NewMemoryStore remembering at most maxEntries ids
// (at least 1). When full, a new id takes the place of the one that
// expires first: an expired one if there is any, else one still
// remembered, whose replay is then no longer caught.
func NewMemoryStoreMax(now func() time.Time, maxEntries int) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, max: max(maxEntries, 1), ids: make(map[string]*memEntry)}
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, id string, lease time.Duration) (State, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if e, ok := s.ids[id]; ok && now.Before(e.expires) {
		return e.state, nil
	}
	s.set(id, InFlight, now.Add(lease))
	return Claimed, nil
}

// Done implements Store.
func (s *MemoryStore) Done(_ context.Context, id string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	s.set(id, Processed, now.Add(ttl))
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok {
		heap.Remove(&s.exp, e.index)
		delete(s.ids, id)
	}
	return nil
}

// Len is the number of ids remembered, expired ones not yet dropped
// included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// set records id, making room first if the store is full. s.mu must be
// held.
func (s *MemoryStore) set(id string, state State, expires time.Time) {
	if e, ok := s.ids[id]; ok {
		e.state, e.expires = state, expires
		heap.Fix(&s.exp, e.index)
		return
	}
	if len(s.ids) >= s.max {
		oldest := heap.Pop(&s.exp).(*memEntry)
		delete(s.ids, oldest.id)
	}
	e := &memEntry{id: id, state: state, expires: expires}
	heap.Push(&s.exp, e)
	s.ids[id] = e
}

// expire drops up to expireBatch ids expired at now. s.mu must be held.
func (s *MemoryStore) expire(now time.Time) {
	for range expireBatch {
		if len(s.exp) == 0 || now.Before(s.exp[0].expires) {
			return
		}
		e := heap.Pop(&s.exp).(*memEntry)
		delete(s.ids, e.id)
	}
}

// expiryHeap orders entries by expiry, for container/heap.
type expiryHeap []*memEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
