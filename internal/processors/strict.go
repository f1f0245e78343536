package processors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Strict ordering (endpoints.OrderingStrict; docs/design/strict-ordering.md).
//
// The events stage does not attempt a strict endpoint's pair: it parks it,
// in the park topic's partition of the same number, in the order the events
// came (park). The strict stage consumes the park topic. Its runner
// schedules the lanes (endpoint, ordering key) one after another in offset
// order, like every stage, so the events of one pair's key reach the
// endpoint in order. When one fails, it is not handed to a retry tier: it
// holds its key. It stays in the stage's window, not done, and its key's
// later events wait behind it in Kafka and in the window; it is attempted
// again when the tier it would have gone to would have made it due
// (pipeline.Deferred). The hold (attempts, due time, since when) is written
// to the holds topic in the transaction of each attempt, so that a new
// owner, after a crash or a rebalance, knows it. Delivered or dead-lettered
// (on_dead_letter continue), the hold is released (a tombstone in the same
// transaction) and the key's next event goes.

// StageStrict is the Stage name of the stage that delivers strict
// endpoints' events from the park topic.
const StageStrict = "strict"

// TierPark is the Tier of a RetryState in the park topic.
const TierPark = "park"

// HoldVersion is the version of the holds topic's values.
const HoldVersion = 1

// Hold is the durable state of one held pair (endpoint, ordering key) of a
// park partition: the parked event that failed and what its next attempt
// needs.
type Hold struct {
	V          int    `json:"v"`
	EndpointID string `json:"endpoint"`
	EventID    string `json:"event_id"`
	// ParkOffset is the offset of the held event in the park partition.
	ParkOffset int64 `json:"park_offset"`
	// Since is when the key was first held by this event.
	Since        time.Time `json:"since"`
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt"`
	// Due is when the next attempt may be made; Tier the retry tier whose
	// delay it waits, as a tier record would.
	Due       time.Time  `json:"due"`
	Tier      string     `json:"tier"`
	LastClass ErrorClass `json:"last_class,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// State is "" while the event is retried; HoldDead once it is
	// dead-lettered by an endpoint with on_dead_letter hold, until an
	// operator's HoldReplay or HoldSkip (written by hookline dlq replay or
	// skip) releases it.
	State string `json:"state,omitempty"`
	// By and At say who released a dead hold, and when.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
}

// StateName is the hold's State as operators read it: "retrying" for "".
func (h Hold) StateName() string {
	if h.State == "" {
		return "retrying"
	}
	return h.State
}

// States of a Hold.
const (
	HoldDead   = "dead"
	HoldReplay = "replay"
	HoldSkip   = "skip"
)

// HeaderHeldAt is set on the DLQ record of an event that holds its key
// after it was dead-lettered (on_dead_letter hold): its park offset. A
// replay or a skip of that record releases the key instead of sending it
// anew (see HoldCommand).
const HeaderHeldAt = "hookline-held-park-offset"

// HeldRecheck is how often a dead hold's event looks whether an operator
// released it.
const HeldRecheck = time.Second

// HoldCommand is the holds record that releases a dead hold: state is
// HoldReplay (attempt the event again, in its key's place) or HoldSkip
// (release the key without it). The strict stage takes it from the holds
// topic.
func HoldCommand(topic string, partition int32, endpointID string, orderingKey []byte, eventID string, parkOffset int64, state, by string, at time.Time) (*kgo.Record, error) {
	v, err := json.Marshal(Hold{V: HoldVersion, EndpointID: endpointID, EventID: eventID, ParkOffset: parkOffset, State: state, By: by, At: at})
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Partition: partition, Key: HoldKey(endpointID, orderingKey), Value: v}, nil
}

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

// HoldKey is the key of a held pair in the holds topic, and the lane key
// the runner schedules it under.
func HoldKey(endpointID string, orderingKey []byte) []byte {
	k := make([]byte, 0, len(endpointID)+1+len(orderingKey))
	return append(append(append(k, endpointID...), 0), orderingKey...)
}

// SplitHoldKey is the inverse of HoldKey.
func SplitHoldKey(k []byte) (endpointID string, orderingKey []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// DecodeHold reads a holds topic value.
func DecodeHold(v []byte) (Hold, error) {
	var h Hold
	if err := json.Unmarshal(v, &h); err != nil {
		return Hold{}, fmt.Errorf("decode hold: %w", err)
	}
	if h.V < 1 || h.V > HoldVersion {
		return Hold{}, fmt.Errorf("decode hold: unsupported version %d", h.V)
	}
	return h, nil
}

// HeldKey is one held pair as Holds.List shows it.
type HeldKey struct {
	Partition   int32
	OrderingKey []byte
	Hold
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

// park hands a strict endpoint's pair to the strict stage instead of
// attempting it: its successor in the park topic, no attempt.
func (d *Delivery) park(r *kgo.Record, ep endpoints.Endpoint, prior RetryState) []*kgo.Record {
	state := prior
	state.EndpointID, state.Tier, state.Entered, state.Due = ep.ID, TierPark, d.cfg.Now(), time.Time{}
	return []*kgo.Record{d.successor(r, d.cfg.ParkTopic, state)}
}

// Strict is the strict stage: it delivers parked events in order per
// (endpoint, ordering key), holding a key while its event fails.
type Strict struct {
	d          *Delivery
	holds      *Holds
	holdsTopic string
	tierIndex  map[string]int // by tier name
	tierTopics map[string]struct{}
}

// NewStrict returns the strict stage. d is configured as the events
// stage's delivery (its tiers, DLQ, attempts, sender, breaker); holds is
// the table the stage's runner loads on assignment.
func NewStrict(d *Delivery, holds *Holds, holdsTopic string) *Strict {
	s := &Strict{d: d, holds: holds, holdsTopic: holdsTopic, tierIndex: make(map[string]int), tierTopics: make(map[string]struct{})}
	for i, t := range d.cfg.Tiers {
		s.tierIndex[t.Name] = i
		s.tierTopics[t.Topic] = struct{}{}
	}
	return s
}

// Lanes is the endpoint a park record names: its lane, so that it is
// scheduled under (endpoint, ordering key).
func (s *Strict) Lanes(r *kgo.Record) []string {
	for _, h := range r.Headers {
		if h.Key == HeaderEndpoint && len(h.Value) > 0 {
			return []string{string(h.Value)}
		}
	}
	return nil
}

// deferred is the pipeline.Deferred of a held event.
type deferred struct {
	at  time.Time
	out []*kgo.Record
}

func (e *deferred) Error() string { return "held until " + e.at.Format(time.RFC3339Nano) }

// Deferred implements pipeline.Deferred.
func (e *deferred) Deferred() (time.Time, []*kgo.Record) { return e.at, e.out }

// Process attempts a parked event, unless its hold says it is not due yet.
// handedOff are as for Delivery.Process.
func (s *Strict) Process(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	origin := RetryState{OriginTopic: r.Topic, OriginPartition: r.Partition, OriginOffset: r.Offset}
	state, err := ParseRetryState(r.Headers)
	switch {
	case err != nil:
		return []*kgo.Record{s.d.malformed(r, origin, err.Error())}, nil
	case state.EndpointID == "":
		return []*kgo.Record{s.d.malformed(r, state, "park record has no "+HeaderEndpoint+" header")}, nil
	}
	ev, err := envelope.Decode(r.Value)
	if err != nil {
		return []*kgo.Record{s.d.malformed(r, state, err.Error())}, nil
	}
	key := HoldKey(state.EndpointID, r.Key)
	now := s.d.cfg.Now()
	h, held := s.holds.get(r.Partition, key)
	var stale []*kgo.Record
	if held && h.ParkOffset != r.Offset {
		// Left by an aborted transaction, or a release for a key no
		// longer held: the hold that commits with a record's offset is
		// always that record's own.
		s.holds.del(r.Partition, key)
		held = false
		stale = append(stale, &kgo.Record{Topic: s.holdsTopic, Partition: r.Partition, Key: key})
	}
	release := func(out []*kgo.Record) []*kgo.Record {
		s.holds.del(r.Partition, key)
		return append(out, &kgo.Record{Topic: s.holdsTopic, Partition: r.Partition, Key: key})
	}
	tier := -1
	prior := state
	switch {
	case held && h.State == HoldDead:
		// Dead-lettered, on_dead_letter hold: the key waits for an
		// operator (its DLQ successor, committed with the hold, is not
		// a hand-off that releases it).
		return nil, &deferred{at: now.Add(HeldRecheck)}
	case held && h.State == HoldSkip:
		s.d.cfg.Logger.Info("held key released by a skip", "event_id", ev.ID, "endpoint", state.EndpointID, "partition", r.Partition, "by", h.By)
		return release(nil), nil
	case held && h.State == HoldReplay:
		// Replayed: attempted again in its key's place, attempts afresh.
		h.State, h.Attempts, h.Due = "", 0, time.Time{}
	case held && now.Before(h.Due):
		return nil, &deferred{at: h.Due}
	case held:
		prior.Attempts, prior.FirstAttempt = h.Attempts, h.FirstAttempt
		tier = s.tierIndex[h.Tier]
	default:
		if moved, all := movedOn(handedOff); all || len(moved) > 0 {
			return stale, nil // dead-lettered by a torn transaction
		}
	}
	// The attempt is made as the stage it would be in without strict
	// ordering: the events stage first, then each tier in turn.
	dd := *s.d
	dd.cfg.TierIndex, dd.cfg.Stage, dd.cfg.ParkTopic = tier, StageStrict, ""
	out, err := dd.deliverTo(ctx, r, ev, state.EndpointID, prior)
	if err != nil {
		return nil, err
	}
	// The pair's successor (a tier or the DLQ) says where it would go;
	// the other records (its attempt, operational events) ride along.
	var next *kgo.Record
	for _, o := range out {
		if _, tier := s.tierTopics[o.Topic]; tier || o.Topic == s.d.cfg.DLQTopic {
			next = o
		} else if o.Topic == s.d.cfg.AttemptsTopic && prior.Attempts > 0 {
			// Every attempt of a held event is made from the same
			// park offset: number them apart.
			if err := renumberAttempt(o, prior.Attempts+1); err != nil {
				return nil, err
			}
		}
	}
	dead := next != nil && next.Topic == s.d.cfg.DLQTopic
	if dead {
		if ep, ok := s.d.cfg.Endpoints.Get(state.EndpointID); ok && ep.OnDeadLetter == endpoints.OnDeadLetterHold {
			return s.holdDead(r, key, ev, state, h, held, now, append(out, stale...), next)
		}
	}
	if next == nil || dead {
		// Delivered, or dead-lettered with on_dead_letter continue: the
		// events behind it go on.
		out = append(out, stale...)
		if held {
			out = release(out)
		}
		return out, nil
	}
	ns, err := ParseRetryState(next.Headers)
	if err != nil {
		return nil, fmt.Errorf("read retry state of event %s: %w", ev.ID, err)
	}
	nh := Hold{
		V: HoldVersion, EndpointID: state.EndpointID, EventID: ev.ID, ParkOffset: r.Offset,
		Since: now, Attempts: ns.Attempts, FirstAttempt: ns.FirstAttempt,
		Due: ns.Due, Tier: ns.Tier, LastClass: ns.LastClass, LastError: ns.LastError,
	}
	if held {
		nh.Since = h.Since
	}
	later := slices.DeleteFunc(out, func(o *kgo.Record) bool { return o == next })
	return s.hold(r, key, nh, ev.ID, append(later, stale...))
}

// hold commits nh as the key's hold with the records of this attempt, and
// defers the event to nh's due time.
func (s *Strict) hold(r *kgo.Record, key []byte, nh Hold, eventID string, out []*kgo.Record) ([]*kgo.Record, error) {
	v, err := json.Marshal(nh)
	if err != nil {
		return nil, fmt.Errorf("encode hold of event %s: %w", eventID, err)
	}
	s.holds.set(r.Partition, key, nh)
	out = append(out, &kgo.Record{Topic: s.holdsTopic, Partition: r.Partition, Key: key, Value: v})
	s.d.cfg.Logger.Debug("strict event holds its key", "event_id", eventID, "endpoint", nh.EndpointID,
		"partition", r.Partition, "attempt", nh.Attempts, "due", nh.Due, "state", nh.State)
	if nh.State == HoldDead {
		return nil, &deferred{at: s.d.cfg.Now().Add(HeldRecheck), out: out}
	}
	return nil, &deferred{at: nh.Due, out: out}
}

// holdDead dead-letters the event of an on_dead_letter hold endpoint and
// keeps its key held: the DLQ record (marked with HeaderHeldAt, so that a
// replay or skip releases the key), the attempt record and a dead hold
// commit together, and the event waits in its key's place.
func (s *Strict) holdDead(r *kgo.Record, key []byte, ev envelope.Event, state RetryState, h Hold, held bool, now time.Time, out []*kgo.Record, dlqRec *kgo.Record) ([]*kgo.Record, error) {
	dlqRec.Headers = append(dlqRec.Headers, kgo.RecordHeader{Key: HeaderHeldAt, Value: []byte(strconv.FormatInt(r.Offset, 10))})
	ns, err := ParseRetryState(dlqRec.Headers)
	if err != nil {
		return nil, fmt.Errorf("read retry state of event %s: %w", ev.ID, err)
	}
	nh := Hold{
		V: HoldVersion, EndpointID: state.EndpointID, EventID: ev.ID, ParkOffset: r.Offset,
		Since: now, Attempts: ns.Attempts, FirstAttempt: ns.FirstAttempt,
		LastClass: ns.LastClass, LastError: ns.LastError, State: HoldDead,
	}
	if held {
		nh.Since = h.Since
	}
	return s.hold(r, key, nh, ev.ID, out)
}

// renumberAttempt gives an attempt record the id of the n-th attempt made
// from its source record.
func renumberAttempt(r *kgo.Record, n int) error {
	a, err := DecodeAttempt(r.Value)
	if err != nil {
		return err
	}
	a.AttemptID += "#" + strconv.Itoa(n)
	nr, err := a.Record(r.Topic)
	if err != nil {
		return err
	}
	r.Value = nr.Value
	return nil
}
