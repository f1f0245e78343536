package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/topics"
)

// Options are what a Service needs beyond its configuration.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	// Registry receives every metric; main builds it.
	Registry *prometheus.Registry
	// Extra runs beside the pipeline once it is ready, with its clients (the
	// ClickHouse sink, for one). Its error stops the service.
	Extra []Extra
}

// Extra is a component that runs beside the stages until ctx ends (see
// Options.Extra). An error it returns before then stops the service.
type Extra func(ctx context.Context, env *Env) error

// Env is what a running service shares with extra components.
type Env struct {
	Topics  topics.Set
	Brokers []string
	// KafkaOpts are the options beyond the seed brokers that every client of
	// the cluster needs (TLS, SASL; see KafkaOpts).
	KafkaOpts []kgo.Opt
	Client    *kgo.Client
	Admin     *kadm.Client
	Registry  *endpoints.Registry
	Metrics   *Metrics
	// Holds are the strict stage's held keys in this process.
	Holds  *processors.Holds
	Prom   *prometheus.Registry
	Logger *slog.Logger
}

// Service is one `hookline serve` process: the embedded broker when no
// brokers are configured, topic provisioning, the endpoint registry, the
// ingest API, one runner per stage, metrics and health.
type Service struct {
	opts Options
	cfg  config.Config
	log  *slog.Logger

	mu          sync.Mutex
	env         *Env
	runners     []*pipeline.Runner
	ingestAddr  string
	metricsAddr string
	ready       chan struct{}
	readyOnce   sync.Once
}

// NewService validates the configuration and prepares a service.
func NewService(opts Options) (*Service, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	return &Service{opts: opts, cfg: opts.Config, log: opts.Logger, ready: make(chan struct{})}, nil
}

// Ready is closed once topics exist, the registry is loaded, every stage has
// been assigned its partitions and the APIs listen.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// IngestAddr is the address the ingest API listens on, once ready.
func (s *Service) IngestAddr() string { s.mu.Lock(); defer s.mu.Unlock(); return s.ingestAddr }

// MetricsAddr is the address of /metrics, /healthz and /readyz, once ready.
func (s *Service) MetricsAddr() string { s.mu.Lock(); defer s.mu.Unlock(); return s.metricsAddr }

// Env returns the running service's shared clients, once ready.
func (s *Service) Env() *Env { s.mu.Lock(); defer s.mu.Unlock(); return s.env }

// Runners returns the stage runners, once ready.
func (s *Service) Runners() []*pipeline.Runner { s.mu.Lock(); defer s.mu.Unlock(); return s.runners }

// Run opens the listeners, connects, starts everything in one run group and
// blocks until ctx is done or a component fails; then it shuts down in order
// (see runGroup.wait) and returns once every goroutine it started has
// returned. The Kafka client and the embedded broker close last.
func (s *Service) Run(ctx context.Context) error {
	cfg := s.cfg
	secure, err := KafkaOpts(cfg)
	if err != nil {
		return err
	}
	s.warnKafkaSecurity()
	// Every listener is open before anything starts, so that a bind error
	// stops nothing half started.
	lns, err := openListeners(cfg)
	if err != nil {
		return err
	}
	defer lns.close()
	brokers := cfg.Brokers
	if cfg.Embedded() {
		emb, err := StartEmbedded(cfg.KafkaListen, cfg.DataDir, int32(cfg.Partitions), s.log)
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = emb.Addrs()
	}

	if err := checkKafkaAuth(ctx, brokers, secure); err != nil {
		return err
	}
	set := topics.New(cfg.TopicPrefix, cfg.Tiers, cfg.TierScale, int32(cfg.Partitions), int16(cfg.ReplicationFactor))
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerLinger(time.Millisecond)}, secure...)...)
	if err != nil {
		return fmt.Errorf("create kafka client for %v: %w", brokers, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := provision(ctx, set, adm, s.log); err != nil {
		return err
	}
	reg := endpoints.NewRegistry(cl, set.Endpoints, s.log)
	if err := s.useSecretKeys(reg, set.Endpoints); err != nil {
		return err
	}

	env := &Env{Topics: set, Brokers: brokers, KafkaOpts: secure, Client: cl, Admin: adm, Registry: reg, Prom: s.opts.Registry, Logger: s.log}
	rg := newRunGroup(ctx, cfg.ShutdownGrace, s.log)
	return rg.wait(s.start(ctx, rg, env, lns))
}
