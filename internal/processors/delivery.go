package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/operational"
	"github.com/hookline/hookline/internal/rawjson"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StageEvents is the Stage name of the stage that consumes the events topic.
const StageEvents = "events"

// DefaultJitter is the jitter of tier delays unless configured (jitter in
// config.Default): each due time is spread over ±20% of its tier's delay
// (DueAt).
const DefaultJitter = 0.2

// DefaultFanOutConcurrency bounds the concurrent requests of one fan-out event.
const DefaultFanOutConcurrency = 16

// TierTarget is one retry tier as the delivery stage routes to it.
type TierTarget struct {
	Name  string
	Topic string
	// Delay is how long a record waits in the tier before it is attempted.
	Delay time.Duration
}

// DeliveryConfig configures a Delivery stage.
type DeliveryConfig struct {
	// Stage is StageEvents or the name of the tier this stage consumes.
	Stage string
	// TierIndex is -1 for the events stage, else the index of Stage in Tiers.
	TierIndex int
	// Tiers are all retry tiers in order.
	Tiers         []TierTarget
	DLQTopic      string
	AttemptsTopic string
	// ParkTopic, in the events stage, is where strict endpoints' pairs go
	// instead of an attempt (strict.go); "" attempts them.
	ParkTopic string
	// MaxAttempts caps the attempts per pair; default len(Tiers)+1.
	MaxAttempts int
	// Jitter spreads tier due times by ±Jitter of the delay, in [0,1); 0 is
	// none (config.Default sets DefaultJitter).
	Jitter    float64
	Endpoints endpoints.Lookup
	// Disable is called when an endpoint answers 410 Gone; may be nil.
	Disable func(ctx context.Context, endpointID, reason string) error
	Sender  *Sender
	// Breaker may be nil: no circuit breaking.
	Breaker *Breaker
	// Health may be nil: no endpoint.failing, endpoint.recovered or
	// auto-disable.
	Health *Health
	// DisableAfter is how long an endpoint that sets no disable_after may
	// fail without a success before it is disabled; 0 never.
	DisableAfter time.Duration
	// OperationalTopic receives operational events, in the transaction of
	// the record that caused them; "" writes none.
	OperationalTopic string
	// Now defaults to time.Now.
	Now func() time.Time
	// Rand returns a number in [0,1) for jitter; defaults to math/rand/v2.
	Rand func() float64
	// Logger defaults to discarding.
	Logger *slog.Logger
	// FanOutConcurrency bounds the concurrent requests of one tenant event;
	// default DefaultFanOutConcurrency.
	FanOutConcurrency int
	// Lane returns the endpoint the record is being processed for, one of
	// those Lanes split it into (pipeline.Lane); "" means every endpoint
	// it addresses. May be nil.
	Lane func(context.Context) string
}

// Delivery is the stage that attempts pairs (event, endpoint) and routes each
// on: done, next retry tier, or DLQ, with one attempt record per pair.
type Delivery struct {
	cfg    DeliveryConfig
	delays []time.Duration // of cfg.Tiers, for RouteRetry
}

// errCircuitOpen is the error of an attempt the breaker skipped.
var errCircuitOpen = errors.New("circuit open: endpoint unresponsive, attempt skipped")

// NewDelivery checks cfg and fills in defaults. Errors name the field.
func NewDelivery(cfg DeliveryConfig) (*Delivery, error) {
	bad := func(field, reason string) (*Delivery, error) {
		return nil, fmt.Errorf("delivery config: %s: %s", field, reason)
	}
	switch {
	case cfg.Stage == "":
		return bad("Stage", "is required")
	case cfg.TierIndex < -1 || cfg.TierIndex >= len(cfg.Tiers):
		return bad("TierIndex", fmt.Sprintf("%d is out of range for %d tiers", cfg.TierIndex, len(cfg.Tiers)))
	case cfg.TierIndex == -1 && cfg.Stage != StageEvents:
		return bad("Stage", fmt.Sprintf("must be %q when TierIndex is -1", StageEvents))
	case cfg.TierIndex >= 0 && cfg.Stage != cfg.Tiers[cfg.TierIndex].Name:
		return bad("Stage", fmt.Sprintf("%q is not the name of tier %d (%q)", cfg.Stage, cfg.TierIndex, cfg.Tiers[cfg.TierIndex].Name))
	case cfg.DLQTopic == "":
		return bad("DLQTopic", "is required")
	case cfg.AttemptsTopic == "":
		return bad("AttemptsTopic", "is required")
	case cfg.MaxAttempts < 0:
		return bad("MaxAttempts", "must not be negative")
	case !(cfg.Jitter >= 0 && cfg.Jitter < 1):
		return bad("Jitter", fmt.Sprintf("%v is outside [0,1)", cfg.Jitter))
	case cfg.Endpoints == nil:
		return bad("Endpoints", "is required")
	case cfg.Sender == nil:
		return bad("Sender", "is required")
	case cfg.FanOutConcurrency < 0:
		return bad("FanOutConcurrency", "must not be negative")
	case cfg.DisableAfter < 0:
		return bad("DisableAfter", "must not be negative")
	}
	for i, t := range cfg.Tiers {
		switch {
		case t.Name == "" || t.Name == TierDLQ:
			return bad(fmt.Sprintf("Tiers[%d].Name", i), fmt.Sprintf("must be set and not %q", TierDLQ))
		case t.Topic == "":
			return bad(fmt.Sprintf("Tiers[%d].Topic", i), "is required")
		case t.Delay < 0:
			return bad(fmt.Sprintf("Tiers[%d].Delay", i), "must not be negative")
		}
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = len(cfg.Tiers) + 1
	}
	if cfg.FanOutConcurrency == 0 {
		cfg.FanOutConcurrency = DefaultFanOutConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Delivery{cfg: cfg}
	for _, t := range cfg.Tiers {
		d.delays = append(d.delays, t.Delay)
	}
	return d, nil
}

// Process attempts the pairs of one consumed record and returns the records
// that route them on. Bad data never fails it: it goes to the DLQ. An error
// means ctx ended before the record was done; the pipeline must then not
// commit it, and will attempt it again (delivery is at-least-once).
// handedOff are r's successors already committed although its offset is not
// (a crash tore their transaction; see pipeline.Stage): their pairs are not
// attempted again.
func (d *Delivery) Process(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	moved, all := movedOn(handedOff)
	switch {
	case all:
		return nil, nil
	case d.cfg.TierIndex < 0:
		lane := ""
		if d.cfg.Lane != nil {
			lane = d.cfg.Lane(ctx)
		}
		return d.processEvent(ctx, r, lane, moved)
	case len(moved) > 0:
		return nil, nil // a tier record is one pair, and it moved on
	}
	return d.processTier(ctx, r)
}

// movedOn reads the successors already committed for the record being
// processed: the endpoints whose pair moved on, or all when the record
// itself moved on (a malformed record's DLQ successor names no endpoint).
func movedOn(handedOff []*kgo.Record) (moved map[string]bool, all bool) {
	for _, h := range handedOff {
		st, err := ParseRetryState(h.Headers)
		if err != nil || st.EndpointID == "" {
			return nil, true
		}
		if moved == nil {
			moved = make(map[string]bool)
		}
		moved[st.EndpointID] = true
	}
	return moved, false
}

// Lanes splits a record into one independent delivery per endpoint before
// its first attempt (pipeline.RunnerConfig.Lanes): the endpoint a tier
// record or an event names, or each subscriber of the event's tenant. So a
// tenant's hanging endpoint holds neither its other endpoints nor the
// tenant's later events to them: order and isolation are per (endpoint,
// ordering key). A record it cannot read is not split, and Process
// dead-letters it once.
func (d *Delivery) Lanes(r *kgo.Record) []string {
	if d.cfg.TierIndex >= 0 {
		for _, h := range r.Headers {
			if h.Key == HeaderEndpoint && len(h.Value) > 0 {
				return []string{string(h.Value)}
			}
		}
		return nil
	}
	ev, err := envelope.Decode(r.Value)
	switch {
	case err != nil:
		return nil
	case ev.EndpointID != "":
		return []string{ev.EndpointID}
	}
	eps := d.cfg.Endpoints.ByTenant(ev.Tenant, ev.Type)
	if len(eps) == 0 {
		return nil
	}
	lanes := make([]string, len(eps))
	for i, ep := range eps {
		lanes[i] = ep.ID
	}
	return lanes
}

// processEvent delivers an event to the endpoint of its lane, or with no
// lane to its endpoint or its tenant's, except the pairs that moved on
// already.
func (d *Delivery) processEvent(ctx context.Context, r *kgo.Record, lane string, moved map[string]bool) ([]*kgo.Record, error) {
	origin := RetryState{OriginTopic: r.Topic, OriginPartition: r.Partition, OriginOffset: r.Offset}
	ev, err := envelope.Decode(r.Value)
	if err != nil {
		return []*kgo.Record{d.malformed(r, origin, err.Error())}, nil
	}
	if lane != "" && ev.EndpointID == "" {
		return d.deliverToSubscriber(ctx, r, ev, lane, moved, origin)
	}
	if ev.EndpointID != "" {
		if moved[ev.EndpointID] {
			return nil, nil
		}
		return d.deliverTo(ctx, r, ev, ev.EndpointID, origin)
	}
	eps := d.cfg.Endpoints.ByTenant(ev.Tenant, ev.Type)
	if len(moved) > 0 {
		eps = slices.DeleteFunc(slices.Clone(eps), func(ep endpoints.Endpoint) bool { return moved[ep.ID] })
	}
	if len(eps) == 0 {
		d.cfg.Logger.Debug("no endpoint subscribes to event", "event_id", ev.ID, "tenant", ev.Tenant, "event_type", ev.Type, "partition", r.Partition)
		return nil, nil
	}
	return d.fanOut(ctx, r, ev, eps, origin)
}

// deliverToSubscriber delivers a tenant event to one of the tenant's
// endpoints, the lane Lanes chose, unless it moved on already or stopped
// subscribing since (a fan-out would have left it out too).
func (d *Delivery) deliverToSubscriber(ctx context.Context, r *kgo.Record, ev envelope.Event, id string, moved map[string]bool, origin RetryState) ([]*kgo.Record, error) {
	if moved[id] {
		return nil, nil
	}
	ep, ok := d.cfg.Endpoints.Get(id)
	if !ok || !ep.Enabled || ep.Tenant != ev.Tenant || !ep.Accepts(ev.Type) {
		d.cfg.Logger.Debug("endpoint no longer subscribes to event", "event_id", ev.ID, "endpoint", id, "partition", r.Partition)
		return nil, nil
	}
	return d.deliver(ctx, r, ev, ep, origin)
}

// fanOut delivers to a tenant's endpoints concurrently, so one slow endpoint
// delays the others by at most its own request, and returns their records in
// endpoint order.
func (d *Delivery) fanOut(ctx context.Context, r *kgo.Record, ev envelope.Event, eps []endpoints.Endpoint, origin RetryState) ([]*kgo.Record, error) {
	type result struct {
		recs []*kgo.Record
		err  error
	}
	results := make([]result, len(eps))
	sem := make(chan struct{}, d.cfg.FanOutConcurrency)
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			recs, err := d.deliver(ctx, r, ev, ep, origin)
			results[i] = result{recs, err}
		}()
	}
	wg.Wait()
	var out []*kgo.Record
	for _, res := range results {
		if res.err != nil {
			return nil, res.err
		}
		out = append(out, res.recs...)
	}
	return out, nil
}

func (d *Delivery) processTier(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error) {
	origin := RetryState{OriginTopic: r.Topic, OriginPartition: r.Partition, OriginOffset: r.Offset}
	state, err := ParseRetryState(r.Headers)
	if err != nil {
		return []*kgo.Record{d.malformed(r, origin, err.Error())}, nil
	}
	if state.OriginTopic == "" {
		state.OriginTopic, state.OriginPartition, state.OriginOffset = r.Topic, r.Partition, r.Offset
	}
	if state.EndpointID == "" {
		return []*kgo.Record{d.malformed(r, state, "tier record has no "+HeaderEndpoint+" header")}, nil
	}
	ev, err := envelope.Decode(r.Value)
	if err != nil {
		return []*kgo.Record{d.malformed(r, state, err.Error())}, nil
	}
	return d.deliverTo(ctx, r, ev, state.EndpointID, state)
}

// deliverTo delivers to an endpoint named by id, which may since have been
// deleted or disabled.
func (d *Delivery) deliverTo(ctx context.Context, r *kgo.Record, ev envelope.Event, id string, prior RetryState) ([]*kgo.Record, error) {
	ep, ok := d.cfg.Endpoints.Get(id)
	switch {
	case !ok:
		return d.skipToDLQ(r, ev, id, prior, ClassEndpointMissing, fmt.Sprintf("endpoint %s does not exist", id))
	case !ep.Enabled:
		reason := fmt.Sprintf("endpoint %s is disabled", id)
		if ep.DisabledReason != "" {
			reason += ": " + ep.DisabledReason
		}
		return d.skipToDLQ(r, ev, id, prior, ClassEndpointDisabled, reason)
	}
	return d.deliver(ctx, r, ev, ep, prior)
}

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

func (d *Delivery) deliver(ctx context.Context, r *kgo.Record, ev envelope.Event, ep endpoints.Endpoint, prior RetryState) ([]*kgo.Record, error) {
	if d.cfg.TierIndex < 0 && d.cfg.ParkTopic != "" && ep.Strict() {
		return d.park(r, ep, prior), nil
	}
	start := d.cfg.Now()
	a := d.newAttempt(r, ev, ep.ID, ep.Tenant, prior, start)

	var res Result
	if d.cfg.Breaker != nil && !d.cfg.Breaker.Allow(ep.ID, start) {
		res = Result{Err: errCircuitOpen, Verdict: Retryable, Class: ClassCircuitOpen, Skipped: true}
	} else {
		body, err := WebhookBody(ev)
		if err != nil {
			return d.skipToDLQ(r, ev, ep.ID, prior, ClassMalformed, err.Error())
		}
		res = d.cfg.Sender.Send(ctx, ep, ev.ID, start, body)
		if res.Err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("deliver event %s to %s: %w", ev.ID, ep.ID, ctx.Err())
		}
	}
	end := d.cfg.Now()
	var health HealthChange
	if !res.Skipped {
		opened := d.cfg.Breaker != nil && d.cfg.Breaker.Report(ep.ID, res.Class, res.Verdict, end)
		if d.cfg.Health != nil {
			health = d.cfg.Health.Report(ep.ID, res.Verdict == Delivered, opened, ep.DisableAfterOr(d.cfg.DisableAfter), ep.UpdatedAt, end)
		}
	}
	a.FinishedAt = end
	a.Skipped = res.Skipped
	a.StatusCode, a.ErrorClass, a.Error = res.StatusCode, res.Class, TruncateError(res.Failure())
	a.LatencyMS = float64(res.Latency) / float64(time.Millisecond)
	a.RequestBytes, a.ResponseBytes = res.RequestBytes, res.ResponseBytes

	log := d.cfg.Logger.With("event_id", ev.ID, "endpoint", ep.ID, "tier", d.cfg.Stage, "partition", r.Partition)
	state := d.nextState(prior, a, res, res.Failure())
	ops := d.healthEvents(ctx, log, ep, a, res, health)
	var reason string
	switch res.Verdict {
	case Delivered:
		a.Outcome = OutcomeDelivered
		return d.emit(r, a, "", nil, ops...)
	case Retryable:
		next, dlq := NextStep(d.cfg.TierIndex, a.Attempt, len(d.cfg.Tiers), d.cfg.MaxAttempts)
		if !dlq {
			// The due time is the next tier's, or the Retry-After when
			// later; a long Retry-After waits in a tier whose delay covers
			// it, behind records due no sooner.
			due := DueAt(end, d.cfg.Tiers[next].Delay, d.cfg.Jitter, d.cfg.Rand())
			routed, wait := RouteRetry(d.delays, next, res.RetryAfter)
			if ra := end.Add(wait); ra.After(due) {
				due = ra
			}
			tier := d.cfg.Tiers[routed]
			state.Tier, state.Due = tier.Name, due
			a.Outcome, a.NextTier = OutcomeRetry, tier.Name
			log.Debug("attempt failed, retrying", "attempt", a.Attempt, "next_tier", tier.Name, "due", due, "error_class", res.Class, "retry_after", res.RetryAfter)
			return d.emit(r, a, tier.Topic, &state, ops...)
		}
		reason = fmt.Sprintf("attempts exhausted after %d attempts: %s", a.Attempt, res.Failure())
	case Permanent:
		reason = "permanent failure: " + res.Failure()
	case Gone:
		reason = "endpoint gone: " + res.Failure()
		if d.cfg.Disable != nil {
			why := fmt.Sprintf("endpoint answered %s to event %s", res.Failure(), ev.ID)
			if err := d.cfg.Disable(ctx, ep.ID, why); err != nil {
				log.Error("disable gone endpoint", "error", err)
				reason += " (disabling the endpoint failed)"
			} else {
				reason += ", endpoint disabled"
				ops = append(ops, d.disabled(ep, a, operational.CauseGone, why, health))
			}
		}
	}
	state.Tier, state.DLQReason = TierDLQ, TruncateError(reason)
	a.Outcome, a.NextTier = OutcomeDeadLettered, TierDLQ
	log.Info("pair dead-lettered", "attempt", a.Attempt, "error_class", res.Class, "reason", reason)
	return d.emit(r, a, d.cfg.DLQTopic, &state, ops...)
}

// healthEvents turns what a request changed about its endpoint's health
// into operational events, and disables an endpoint that has failed for
// its disable_after. A 410 disables the endpoint in deliver instead.
func (d *Delivery) healthEvents(ctx context.Context, log *slog.Logger, ep endpoints.Endpoint, a Attempt, res Result, ch HealthChange) []operational.Event {
	var ops []operational.Event
	data := operational.Data{EndpointID: ep.ID, Tenant: ep.Tenant, ConsecutiveFailures: ch.Failures}
	if !ch.Since.IsZero() {
		since := ch.Since.UTC()
		data.FailingSince = &since
	}
	switch {
	case ch.Failing:
		data.Cause, data.Reason = ch.Cause, res.Failure()
		ops = append(ops, operational.New(operational.EndpointFailing, a.FinishedAt, data, a.AttemptID))
	case ch.Recovered:
		ops = append(ops, operational.New(operational.EndpointRecovered, a.FinishedAt, data, a.AttemptID))
	}
	if !ch.Disable || res.Verdict == Gone || d.cfg.Disable == nil {
		return ops
	}
	why := fmt.Sprintf("failed for %s without a success (%d failed requests since %s; disable_after %s), last: %s",
		a.FinishedAt.Sub(ch.Since).Round(time.Second), ch.Failures, ch.Since.UTC().Format(time.RFC3339), ep.DisableAfterOr(d.cfg.DisableAfter), res.Failure())
	if err := d.cfg.Disable(ctx, ep.ID, why); err != nil {
		// The streak stands: the next failure tries again.
		log.Error("disable failing endpoint", "error", err)
		return ops
	}
	log.Warn("endpoint disabled", "reason", why)
	return append(ops, d.disabled(ep, a, operational.CauseDisableAfter, why, ch))
}

// disabled is the endpoint.disabled event of an endpoint this attempt
// disabled; its streak is over.
func (d *Delivery) disabled(ep endpoints.Endpoint, a Attempt, cause, why string, ch HealthChange) operational.Event {
	if d.cfg.Health != nil {
		d.cfg.Health.Forget(ep.ID)
	}
	data := operational.Data{EndpointID: ep.ID, Tenant: ep.Tenant, Cause: cause, Reason: why, ConsecutiveFailures: ch.Failures}
	if !ch.Since.IsZero() {
		since := ch.Since.UTC()
		data.FailingSince = &since
	}
	return operational.New(operational.EndpointDisabled, a.FinishedAt, data, a.AttemptID)
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

// webhookHead is the JSON body POSTed to endpoints but its "data", the
// producer's payload, which WebhookBody writes byte for byte.
type webhookHead struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Tenant    string `json:"tenant,omitempty"`
	Timestamp string `json:"timestamp"`
}

// WebhookBody is the request body for an event; see the package doc. It
// depends only on the event, so every retry sends the same bytes, and its
// "data" is the payload exactly as the producer sent it.
func WebhookBody(ev envelope.Event) ([]byte, error) {
	b, err := rawjson.Object(webhookHead{
		ID:        ev.ID,
		Type:      ev.Type,
		Tenant:    ev.Tenant,
		Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano),
	}, "data", ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode webhook body of event %s: %w", ev.ID, err)
	}
	return b, nil
}
