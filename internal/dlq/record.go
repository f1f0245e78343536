package dlq

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
)

// mark is what a replay stamps on every record it sends.
type mark struct {
	id, operator string
	at           time.Time
}

// replayRecord builds the record a DLQ entry is replayed as. An error
// means the entry cannot go to the target; it is skipped.
func (c *Client) replayRecord(e *Entry, target Target, m mark) (*kgo.Record, error) {
	if held, ok := heldAt(e); ok || target == TargetSkip {
		// The pair holds its key at a strict endpoint (on_dead_letter
		// hold): the strict stage attempts it again in its key's place, or
		// releases the key without it, once the release is in the holds
		// topic. Sent anew it would wait behind its own key.
		if !ok {
			return nil, errors.New("holds no key of a strict endpoint: nothing to skip")
		}
		state := processors.HoldReplay
		if target == TargetSkip {
			state = processors.HoldSkip
		}
		return processors.HoldCommand(c.cfg.Topics.Holds, e.Partition, e.Endpoint(), e.Key, e.EventID, held, state, m.operator, m.at)
	}
	hs := make([]kgo.RecordHeader, 0, len(e.Headers)+8)
	for _, h := range processors.CarryHeaders(e.Headers) {
		if !replayHeaders[h.Key] {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderReplayID, Value: []byte(m.id)},
		kgo.RecordHeader{Key: HeaderReplayOperator, Value: []byte(m.operator)},
		kgo.RecordHeader{Key: HeaderReplayAt, Value: []byte(strconv.FormatInt(m.at.UnixMilli(), 10))},
		kgo.RecordHeader{Key: HeaderReplaySource, Value: fmt.Appendf(nil, "%s/%d/%d", c.cfg.Topics.DLQ, e.Partition, e.Offset)},
	)
	rec := &kgo.Record{Partition: e.Partition, Key: e.Key, Value: e.Value, Headers: hs}
	switch target {
	case TargetRetry:
		ep := e.Endpoint()
		if ep == "" {
			return nil, errors.New("no endpoint to retry: replay it to the events topic")
		}
		tier := c.cfg.Topics.Tiers[0]
		now := c.cfg.Now()
		st := processors.RetryState{
			Entered: now, Due: now, EndpointID: ep, Tier: tier.Name,
			OriginTopic: e.State.OriginTopic, OriginPartition: e.State.OriginPartition, OriginOffset: e.State.OriginOffset,
		}
		rec.Topic = tier.Topic
		rec.Headers = append(rec.Headers, st.Headers()...)
	default:
		rec.Topic = c.cfg.Topics.Events
		v, err := addressEndpoint(e)
		if err != nil {
			return nil, err
		}
		rec.Value = v
	}
	return rec, nil
}

// heldAt is the park offset of a DLQ entry whose event holds its key
// (processors.HeaderHeldAt).
func heldAt(e *Entry) (int64, bool) {
	for _, h := range e.Headers {
		if h.Key == processors.HeaderHeldAt {
			o, err := strconv.ParseInt(string(h.Value), 10, 64)
			return o, err == nil
		}
	}
	return 0, false
}

// addressEndpoint returns the value to replay an entry as through the
// events topic. A tenant event fanned out to several endpoints is
// dead-lettered once per failing endpoint; replayed as it was, it would go
// to every endpoint of the tenant again. It is rewritten to address the
// entry's endpoint alone, keeping its id, type, payload and time.
func addressEndpoint(e *Entry) ([]byte, error) {
	ep := e.Endpoint()
	if e.EnvelopeErr != nil || e.EventEndpoint != "" || ep == "" {
		return e.Value, nil
	}
	ev, err := envelope.Decode(e.Value)
	if err != nil {
		// Sent as it is: the pipeline dead-letters it again with the
		// reason, as it did the first time.
		return e.Value, nil
	}
	ev.EndpointID, ev.Tenant = ep, ""
	v, err := envelope.Encode(ev)
	if err != nil {
		return nil, fmt.Errorf("re-address event %s to endpoint %s: %w", ev.ID, ep, err)
	}
	return v, nil
}
