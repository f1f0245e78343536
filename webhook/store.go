package webhook

import (
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

// MemoryStore is an in-process Store with expiry. Safe for concurrent use.
type MemoryStore struct {
	now func() time.Time

	mu     sync.Mutex
	ids    map[string]memEntry
	claims int // since the last sweep
}

type memEntry struct {
	state   State
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore reading the clock with now
// (nil: time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, ids: make(map[string]memEntry)}
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, id string, lease time.Duration) (State, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	if s.claims >= 1024 && s.claims >= len(s.ids)/2 {
		s.sweep(now)
	}
	if e, ok := s.ids[id]; ok && now.Before(e.expires) {
		return e.state, nil
	}
	s.ids[id] = memEntry{state: InFlight, expires: now.Add(lease)}
	return Claimed, nil
}

// Done implements Store.
func (s *MemoryStore) Done(_ context.Context, id string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = memEntry{state: Processed, expires: now.Add(ttl)}
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
	return nil
}

// Len is the number of ids remembered, expired ones not yet swept included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// sweep drops expired ids; amortized over the claims since the last one.
func (s *MemoryStore) sweep(now time.Time) {
	for id, e := range s.ids {
		if !now.Before(e.expires) {
			delete(s.ids, id)
		}
	}
	s.claims = 0
}
