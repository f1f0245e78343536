package app

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// newRunners builds one runner per stage: the events stage, each retry
// tier, and the strict stage. On an error it returns the runners built so
// far, for the caller to close.
func (s *Service) newRunners(env *Env) ([]*pipeline.Runner, error) {
	cfg, set := s.cfg, env.Topics
	sender := processors.NewSender(processors.SenderOptions{Destinations: cfg.Destinations(), MaxIdleConnsPerHost: cfg.IdleConnsPerHost()})
	if cfg.AllowPrivateDestinations {
		s.log.Warn("allow_private_destinations is on: deliveries may reach loopback, private and link-local addresses (cloud metadata included); for local development only")
	}
	breaker := processors.NewBreaker(processors.BreakerOptions{Threshold: cfg.BreakerThreshold, Cooldown: cfg.BreakerCooldown})
	promauto.With(env.Prom).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookline_breakers_open",
		Help: "Endpoints whose circuit breaker is open or half-open in this process.",
	}, func() float64 { return float64(breaker.Open()) })
	tiers := make([]processors.TierTarget, len(set.Tiers))
	for i, t := range set.Tiers {
		tiers[i] = processors.TierTarget{Name: t.Name, Topic: t.Topic, Delay: t.Delay}
	}
	lookup := defaultTimeout{env.Registry, cfg.EndpointTimeout}
	// One per process: an endpoint's limits hold across every stage and
	// partition this process runs (docs/api.md, several processes).
	protection := processors.NewProtection(env.Registry)
	health := processors.NewHealth(cfg.FailingAfter)

	type stage struct {
		name, topic string
		index       int
	}
	stages := []stage{{processors.StageEvents, set.Events, -1}}
	for i, t := range set.Tiers {
		stages = append(stages, stage{t.Name, t.Topic, i})
	}
	// Transactional ids are stable per process slot, so that a restarted
	// process fences its predecessor's producers at once. The embedded
	// broker dies with this process, so there is no predecessor to fence;
	// there a new id per start keeps the broker from pairing a killed
	// transaction's unmarked records with the next commit marker of the
	// same producer when it reloads its data dir (kfake matches markers to
	// records by producer id alone), which would make them visible.
	txnSuffix := cfg.InstanceID
	if cfg.Embedded() {
		txnSuffix += "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	var runners []*pipeline.Runner
	var eventsDelivery *processors.Delivery
	for _, st := range stages {
		park := ""
		if st.index < 0 {
			park = set.Park
		}
		d, err := processors.NewDelivery(processors.DeliveryConfig{
			Stage: st.name, TierIndex: st.index, Tiers: tiers,
			DLQTopic: set.DLQ, AttemptsTopic: set.Attempts, ParkTopic: park,
			MaxAttempts: cfg.Attempts(), Jitter: cfg.Jitter,
			Endpoints: lookup, Disable: env.Registry.Disable,
			Sender: sender, Breaker: breaker, Logger: s.log,
			Health: health, DisableAfter: cfg.EndpointDisableAfter,
			OperationalTopic: set.Operational,
			Lane:             pipeline.Lane,
		})
		if err != nil {
			return runners, err
		}
		// Where the stage hands records on: the next tier, if any, and
		// the DLQ.
		outputs := []string{set.DLQ}
		if next := st.index + 1; next < len(set.Tiers) {
			outputs = append(outputs, set.Tiers[next].Topic)
		}
		if st.index < 0 {
			eventsDelivery = d
			outputs = append(outputs, set.Park)
		}
		var due func(*kgo.Record) (time.Time, bool)
		if st.index >= 0 {
			due = processors.DueOf
		}
		admit := protection.Admit
		if st.index < 0 {
			// A strict endpoint's lane only parks here: its requests are
			// the strict stage's, and admitted there.
			admit = func(lane string, now time.Time) (func(), time.Time, bool) {
				if ep, ok := env.Registry.Get(lane); ok && ep.Strict() {
					return nil, time.Time{}, true
				}
				return protection.Admit(lane, now)
			}
		}
		rc := s.stageRunnerConfig(env, st.name, st.topic, txnSuffix, d, admit)
		rc.Outputs, rc.Due, rc.Lanes = s.auditOutputs(outputs...), due, d.Lanes
		r, err := pipeline.NewRunner(rc)
		if err != nil {
			return runners, err
		}
		runners = append(runners, r)
	}
	strict, err := s.newStrictRunner(env, eventsDelivery, protection.Admit, txnSuffix)
	if err != nil {
		return runners, err
	}
	return append(runners, strict), nil
}

// auditOutputs turns the hand-off audit on for the embedded broker only
// (pipeline.RunnerConfig.Outputs): its crash can tear a transaction, so a
// new owner reads the stage's outputs for successors committed without
// their offsets. Apache Kafka commits a transaction's records and offsets
// together, and there the audit would find nothing.
func (s *Service) auditOutputs(outputs ...string) []string {
	if !s.cfg.Embedded() {
		return nil
	}
	return outputs
}

// defaultTimeout applies the configured endpoint timeout to endpoints that set none.
type defaultTimeout struct {
	*endpoints.Registry
	timeout time.Duration
}

func (d defaultTimeout) Get(id string) (endpoints.Endpoint, bool) {
	e, ok := d.Registry.Get(id)
	return d.fill(e), ok
}

func (d defaultTimeout) ByTenant(tenant, eventType string) []endpoints.Endpoint {
	eps := d.Registry.ByTenant(tenant, eventType)
	for i := range eps {
		eps[i] = d.fill(eps[i])
	}
	return eps
}

func (d defaultTimeout) fill(e endpoints.Endpoint) endpoints.Endpoint {
	if e.TimeoutMS == 0 {
		e.TimeoutMS = int(d.timeout / time.Millisecond)
	}
	return e
}

// stageRunnerConfig is what the runner of every delivery stage (the events
// stage, the tiers, the strict stage) takes alike: its consumer group and
// transactional id from its name, its stage observed, its admission, and
// the window and shutdown settings.
func (s *Service) stageRunnerConfig(env *Env, name, topic, txnSuffix string, st pipeline.Stage, admit func(string, time.Time) (func(), time.Time, bool)) pipeline.RunnerConfig {
	cfg, set := s.cfg, env.Topics
	return pipeline.RunnerConfig{
		Name:             name,
		Topic:            topic,
		Group:            cfg.TopicPrefix + "delivery." + name,
		TransactionalID:  cfg.TopicPrefix + "delivery." + name + "." + txnSuffix,
		ClientOpts:       env.clientOpts(),
		Stage:            Observe(st, name, set.DLQ, set.Attempts, env.Metrics, s.log),
		Admit:            admit,
		Concurrency:      cfg.Concurrency,
		MaxInFlight:      cfg.MaxInFlight,
		MaxInFlightBytes: int64(cfg.MaxInFlightBytes),
		Grace:            cfg.ShutdownGrace,
		Logger:           s.log,
	}
}
