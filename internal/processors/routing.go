package processors

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
	if err != nil {
		return nil
	}
	keepDecoded(r, ev)
	if ev.EndpointID != "" {
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

// decodedKey is the key, in a record's Context, of the envelope Lanes read
// from its value.
type decodedKey struct{}

// keepDecoded keeps the envelope Lanes decoded with the record (franz-go's
// Record.Context is there for such enrichment), so that Process does not
// decode it again. The payload is pointed back into the record's value: the
// record waits in the read-ahead window, whose bytes bound counts its value
// once.
func keepDecoded(r *kgo.Record, ev envelope.Event) {
	if i := bytes.Index(r.Value, ev.Payload); i >= 0 {
		end := i + len(ev.Payload)
		ev.Payload = r.Value[i:end:end]
	}
	parent := r.Context
	if parent == nil {
		parent = context.Background()
	}
	r.Context = context.WithValue(parent, decodedKey{}, &ev)
}

// decodeEvent is envelope.Decode of r's value, or what Lanes kept of it.
func decodeEvent(r *kgo.Record) (envelope.Event, error) {
	if r.Context != nil {
		if ev, ok := r.Context.Value(decodedKey{}).(*envelope.Event); ok {
			return *ev, nil
		}
	}
	return envelope.Decode(r.Value)
}

// processEvent delivers an event to the endpoint of its lane, or with no
// lane to its endpoint or its tenant's, except the pairs that moved on
// already.
func (d *Delivery) processEvent(ctx context.Context, r *kgo.Record, lane string, moved map[string]bool) ([]*kgo.Record, error) {
	origin := RetryState{OriginTopic: r.Topic, OriginPartition: r.Partition, OriginOffset: r.Offset}
	ev, err := decodeEvent(r)
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
