package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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

// HeldRecheck is how often a dead hold's event looks whether an operator
// released it.
const HeldRecheck = time.Second

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
	a, err := AttemptOf(r)
	if err != nil {
		return err
	}
	a.AttemptID += "#" + strconv.Itoa(n)
	nr, err := a.Record(r.Topic)
	if err != nil {
		return err
	}
	r.Value, r.Context = nr.Value, nr.Context
	return nil
}
