package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/operational"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// lagInterval is how often the lag gauges and the DLQ backlog refresh.
const lagInterval = 5 * time.Second

// start builds the components of a serve on env's clients and starts each
// in rg, in this order: the registry follower, the stages, the APIs, then
// what runs beside them. It returns at the first error; rg.wait then stops
// what it started.
func (s *Service) start(ctx context.Context, rg *runGroup, env *Env, lns *listeners) error {
	cfg, set, reg := s.cfg, env.Topics, env.Registry
	rg.goBackground(func(ctx context.Context) error {
		if err := reg.Run(ctx); err != nil {
			return fmt.Errorf("endpoint registry: %w", err)
		}
		return nil
	})
	if err := reg.WaitReady(ctx); err != nil {
		return fmt.Errorf("load endpoint registry from %s: %w", set.Endpoints, err)
	}

	env.Metrics = NewMetrics(s.opts.Registry, cfg.MetricsEndpointLabels)
	f := promauto.With(s.opts.Registry)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookline_endpoints_disabled",
		Help: "Endpoints in the registry that are disabled (by an operator, or by hookline after a 410).",
	}, func() float64 {
		n := 0
		for _, e := range reg.List() {
			if !e.Enabled {
				n++
			}
		}
		return float64(n)
	})
	d, err := dlq.New(dlq.Config{
		Brokers: env.Brokers, ClientOpts: env.KafkaOpts, Topics: set, Logger: s.log,
		TenantOf: func(id string) string { e, _ := reg.Get(id); return e.Tenant },
	})
	if err != nil {
		return err
	}
	rg.closeAfter(d.Close)
	backlog := d.NewBacklog()
	s.opts.Registry.MustRegister(newBacklogCollector(backlog))
	runners, err := s.newRunners(env)
	for _, r := range runners {
		rg.own(r)
	}
	if err != nil {
		return err
	}
	hf, err := followHolds(rg.bg, env.clientOpts(), set.Holds, env.Holds, s.log)
	if err != nil {
		return fmt.Errorf("follow held keys' releases in %s: %w", set.Holds, err)
	}
	rg.goBackground(func(ctx context.Context) error { hf.run(ctx); return nil })
	for _, r := range runners {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "hookline_stage_ready",
			Help:        "1 while the stage has joined its consumer group and been assigned its partitions, else 0.",
			ConstLabels: prometheus.Labels{"stage": r.Name()},
		}, func() float64 {
			if r.Ready() {
				return 1
			}
			return 0
		})
	}
	for _, r := range runners {
		rg.goStage(r)
	}

	ing, err := s.newIngest(env)
	if err != nil {
		return err
	}
	if err := ing.LoadIdempotency(ctx, env.Client); err != nil {
		return fmt.Errorf("rebuild idempotency index from %s: %w", set.Events, err)
	}
	rg.goBackground(ing.FollowIdempotency)
	s.warnOpenAPI()
	limits := cfg.ServerLimits()
	rg.serveIngest(limits.Server(ing.Handler()), limits.Listener(lns.ingest))
	rg.serveMetrics(limits.Server(s.healthMux(runners)), limits.Listener(lns.metrics))

	rg.goBackground(func(ctx context.Context) error {
		MonitorLag(ctx, env.Admin, stageGroups(runners), backlog, env.Metrics, lagInterval, s.log)
		return nil
	})
	opsRequests := operational.NewRequestsMetric(s.opts.Registry)
	if cfg.OperatorWebhook != "" {
		fw, err := operational.NewForwarder(operational.ForwarderConfig{
			URL: cfg.OperatorWebhook, Secret: cfg.OperatorWebhookSecret,
			Topic: set.Operational, Group: cfg.TopicPrefix + "operator-webhook",
			ClientOpts: env.clientOpts(),
			Requests:   opsRequests, Logger: s.log,
		})
		if err != nil {
			return err
		}
		rg.goBackground(func(ctx context.Context) error {
			if err := fw.Run(ctx); err != nil {
				return fmt.Errorf("operator webhook: %w", err)
			}
			return nil
		})
	}
	for _, extra := range s.opts.Extra {
		rg.goBackground(func(ctx context.Context) error { return extra(ctx, env) })
	}

	s.mu.Lock()
	s.env, s.runners = env, runners
	s.ingestAddr, s.metricsAddr = lns.ingest.Addr().String(), lns.metrics.Addr().String()
	s.mu.Unlock()
	rg.goBackground(func(ctx context.Context) error { s.watchReady(ctx, runners); return nil })
	s.log.Info("hookline serving", "ingest", s.IngestAddr(), "metrics", s.MetricsAddr(), "brokers", env.Brokers, "partitions", cfg.Partitions)
	return nil
}

// clientOpts are the options of a new client of the cluster: its seed
// brokers and security.
func (e *Env) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(e.Brokers...)}, e.KafkaOpts...)
}

// stageGroups names the runners' consumer groups for the lag monitor.
func stageGroups(runners []*pipeline.Runner) []StageGroup {
	groups := make([]StageGroup, len(runners))
	for i, r := range runners {
		groups[i] = StageGroup{Stage: r.Name(), Group: r.Group(), Tier: i > 0 && r.Name() != processors.StageStrict}
	}
	return groups
}

func (s *Service) watchReady(ctx context.Context, runners []*pipeline.Runner) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, r := range runners {
			all = all && r.Ready()
		}
		if all {
			s.readyOnce.Do(func() { close(s.ready) })
			s.log.Info("ready: every stage has joined its group")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
