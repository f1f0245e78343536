package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
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
