package processors

import (
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/operational"
	"github.com/twmb/franz-go/pkg/kgo"
)

// malformed dead-letters a record that cannot be read, keeping its bytes as
// they were so an operator can fix and re-drive it. It makes no attempt
// record: there is no pair to attribute one to.
func (d *Delivery) malformed(r *kgo.Record, state RetryState, reason string) *kgo.Record {
	now := d.cfg.Now()
	state.Tier, state.Entered, state.Due = TierDLQ, now, time.Time{}
	state.LastClass, state.LastStatus, state.LastError = ClassMalformed, 0, reason
	state.DLQReason = TruncateError("malformed record: " + reason)
	d.cfg.Logger.Warn("malformed record dead-lettered", "tier", d.cfg.Stage, "partition", r.Partition, "offset", r.Offset, "reason", reason)
	return d.successor(r, d.cfg.DLQTopic, state)
}

// skipToDLQ dead-letters a pair whose endpoint cannot be sent to, with a
// skipped attempt record.
func (d *Delivery) skipToDLQ(r *kgo.Record, ev envelope.Event, endpointID string, prior RetryState, class ErrorClass, reason string) ([]*kgo.Record, error) {
	now := d.cfg.Now()
	a := d.newAttempt(r, ev, endpointID, "", prior, now)
	a.Skipped, a.FinishedAt = true, now
	a.ErrorClass, a.Error = class, reason
	a.Outcome, a.NextTier = OutcomeDeadLettered, TierDLQ
	state := d.nextState(prior, a, Result{Class: class}, reason)
	state.Tier, state.DLQReason = TierDLQ, TruncateError(reason)
	return d.emit(r, a, d.cfg.DLQTopic, &state)
}

func (d *Delivery) newAttempt(r *kgo.Record, ev envelope.Event, endpointID, endpointTenant string, prior RetryState, start time.Time) Attempt {
	first := prior.FirstAttempt
	if first.IsZero() {
		first = start
	}
	tenant := ev.Tenant
	if tenant == "" {
		tenant = endpointTenant
	}
	return Attempt{
		AttemptID:    AttemptID(r.Topic, r.Partition, r.Offset, endpointID),
		EventID:      ev.ID,
		EndpointID:   endpointID,
		Tenant:       tenant,
		EventType:    ev.Type,
		Attempt:      prior.Attempts + 1,
		Tier:         d.cfg.Stage,
		StartedAt:    start,
		FirstAttempt: first,
	}
}

// nextState is the RetryState of the pair after attempt a.
func (d *Delivery) nextState(prior RetryState, a Attempt, res Result, lastErr string) RetryState {
	return RetryState{
		Attempts:        a.Attempt,
		FirstAttempt:    a.FirstAttempt,
		Entered:         a.FinishedAt,
		LastStatus:      res.StatusCode,
		LastError:       lastErr,
		LastClass:       res.Class,
		OriginTopic:     prior.OriginTopic,
		OriginPartition: prior.OriginPartition,
		OriginOffset:    prior.OriginOffset,
		EndpointID:      a.EndpointID,
	}
}

// emit returns the attempt record, unless state is nil the pair's
// successor in topic, and the operational events: ops, and
// message.attempt.exhausted when the pair goes to the DLQ. All land in the
// partition number of r, in its transaction.
func (d *Delivery) emit(r *kgo.Record, a Attempt, topic string, state *RetryState, ops ...operational.Event) ([]*kgo.Record, error) {
	ar, err := a.Record(d.cfg.AttemptsTopic)
	if err != nil {
		return nil, err
	}
	ar.Partition = r.Partition
	out := []*kgo.Record{ar}
	if state != nil {
		out = []*kgo.Record{d.successor(r, topic, *state), ar}
	}
	if d.cfg.OperationalTopic == "" {
		return out, nil
	}
	if state != nil && topic == d.cfg.DLQTopic {
		ops = append(ops, operational.New(operational.AttemptExhausted, a.FinishedAt, operational.Data{
			EndpointID: a.EndpointID, Tenant: a.Tenant, EventID: a.EventID, EventType: a.EventType,
			Attempts: a.Attempt, LastStatus: a.StatusCode, ErrorClass: string(a.ErrorClass), Reason: state.DLQReason,
		}, a.AttemptID))
	}
	for _, op := range ops {
		or, err := op.Record(d.cfg.OperationalTopic)
		if err != nil {
			return nil, err
		}
		or.Partition = r.Partition
		out = append(out, or)
	}
	return out, nil
}

// successor copies r into topic with a new retry state. The value is the
// envelope exactly as the producer wrote it; the partition number is kept so
// the key keeps its owner across topics.
func (d *Delivery) successor(r *kgo.Record, topic string, state RetryState) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: r.Partition,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   append(CarryHeaders(r.Headers), state.Headers()...),
	}
}
