package processors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/operational"
	"github.com/twmb/franz-go/pkg/kgo"
)

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

	state := d.nextState(prior, a, res, res.Failure())
	ops := d.healthEvents(ctx, r, ep, a, res, health)
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
			d.pairLog(r, ev.ID, ep.ID).Debug("attempt failed, retrying", "attempt", a.Attempt, "next_tier", tier.Name, "due", due, "error_class", res.Class, "retry_after", res.RetryAfter)
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
				d.pairLog(r, ev.ID, ep.ID).Error("disable gone endpoint", "error", err)
				reason += " (disabling the endpoint failed)"
			} else {
				reason += ", endpoint disabled"
				ops = append(ops, d.disabled(ep, a, operational.CauseGone, why, health))
			}
		}
	}
	state.Tier, state.DLQReason = TierDLQ, TruncateError(reason)
	a.Outcome, a.NextTier = OutcomeDeadLettered, TierDLQ
	d.pairLog(r, ev.ID, ep.ID).Info("pair dead-lettered", "attempt", a.Attempt, "error_class", res.Class, "reason", reason)
	return d.emit(r, a, d.cfg.DLQTopic, &state, ops...)
}

// pairLog is the logger of a pair's messages. It is built where a message
// is logged, not per attempt: With allocates even when nothing is logged,
// and a delivered attempt logs nothing.
func (d *Delivery) pairLog(r *kgo.Record, eventID, endpointID string) *slog.Logger {
	return d.cfg.Logger.With("event_id", eventID, "endpoint", endpointID, "tier", d.cfg.Stage, "partition", r.Partition)
}

// healthEvents turns what a request changed about its endpoint's health
// into operational events, and disables an endpoint that has failed for
// its disable_after. A 410 disables the endpoint in deliver instead.
func (d *Delivery) healthEvents(ctx context.Context, r *kgo.Record, ep endpoints.Endpoint, a Attempt, res Result, ch HealthChange) []operational.Event {
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
		d.pairLog(r, a.EventID, ep.ID).Error("disable failing endpoint", "error", err)
		return ops
	}
	d.pairLog(r, a.EventID, ep.ID).Warn("endpoint disabled", "reason", why)
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
