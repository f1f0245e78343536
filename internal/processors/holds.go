package processors

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeldKey is one held pair as Holds.List shows it.
type HeldKey struct {
	Partition   int32
	OrderingKey []byte
	Hold
}

// HeldKeyView is one held key as operators read it: a line of
// hookline dlq held --json, and with Endpoint empty (the path names it) an
// entry of GET /v1/endpoints/{id}/held.
type HeldKeyView struct {
	Endpoint    string    `json:"endpoint,omitempty"`
	OrderingKey string    `json:"ordering_key"`
	Partition   int32     `json:"partition"`
	EventID     string    `json:"event_id"`
	Since       time.Time `json:"since"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// State is "retrying", or "dead" (on_dead_letter hold: waiting for
	// hookline dlq replay or skip), "replay" or "skip" (released).
	State string `json:"state"`
}

// View is h as operators read it.
func (h HeldKey) View() HeldKeyView {
	return HeldKeyView{Endpoint: h.EndpointID, OrderingKey: string(h.OrderingKey), Partition: h.Partition, EventID: h.EventID,
		Since: h.Since, Attempts: h.Attempts, NextAttempt: h.Due, LastError: h.LastError, State: h.StateName()}
}

// Holds is the strict stage's table of held pairs, per park partition. It
// holds one entry per held key, never the events behind it. The stage
// loads a partition's entries when it is assigned it (Load).
type Holds struct {
	mu    sync.Mutex
	parts map[int32]map[string]Hold
}

// NewHolds returns an empty table.
func NewHolds() *Holds { return &Holds{parts: make(map[int32]map[string]Hold)} }

// Apply takes a release an operator wrote to the holds topic: it replaces
// the dead hold of the same event, and nothing else.
func (h *Holds) Apply(p int32, k []byte, cmd Hold) {
	if cmd.State != HoldReplay && cmd.State != HoldSkip {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur, ok := h.parts[p][string(k)]
	if !ok || cur.State != HoldDead || cur.EventID != cmd.EventID || cur.ParkOffset != cmd.ParkOffset {
		return
	}
	cur.State, cur.By, cur.At = cmd.State, cmd.By, cmd.At
	h.parts[p][string(k)] = cur
}

// Load replaces partition p's entries with what the holds topic says:
// recs are its records in offset order, tombstones included.
func (h *Holds) Load(p int32, recs []*kgo.Record) error {
	m := make(map[string]Hold)
	for _, r := range recs {
		if r.Value == nil {
			delete(m, string(r.Key))
			continue
		}
		hd, err := DecodeHold(r.Value)
		if err != nil {
			return fmt.Errorf("holds[%d] offset %d: %w", p, r.Offset, err)
		}
		if prev, ok := m[string(r.Key)]; ok && (hd.State == HoldReplay || hd.State == HoldSkip) && prev.EventID == hd.EventID {
			// A release keeps what the dead hold knew.
			prev.State, prev.By, prev.At = hd.State, hd.By, hd.At
			hd = prev
		}
		m[string(r.Key)] = hd
	}
	h.mu.Lock()
	h.parts[p] = m
	h.mu.Unlock()
	return nil
}

// Drop forgets partitions no longer owned.
func (h *Holds) Drop(ps []int32) {
	h.mu.Lock()
	for _, p := range ps {
		delete(h.parts, p)
	}
	h.mu.Unlock()
}

// Len is the number of held keys.
func (h *Holds) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.parts {
		n += len(m)
	}
	return n
}

// List returns the held keys, oldest hold first.
func (h *Holds) List() []HeldKey {
	h.mu.Lock()
	var out []HeldKey
	for p, m := range h.parts {
		for k, hd := range m {
			_, ordKey, _ := SplitHoldKey([]byte(k))
			out = append(out, HeldKey{Partition: p, OrderingKey: ordKey, Hold: hd})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b HeldKey) int { return a.Since.Compare(b.Since) })
	return out
}

func (h *Holds) get(p int32, k []byte) (Hold, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd, ok := h.parts[p][string(k)]
	return hd, ok
}

func (h *Holds) set(p int32, k []byte, hd Hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.parts[p] == nil {
		h.parts[p] = make(map[string]Hold)
	}
	h.parts[p][string(k)] = hd
}

func (h *Holds) del(p int32, k []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts[p], string(k))
}
