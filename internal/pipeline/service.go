package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/operational"
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
	Extra []func(ctx context.Context, env *Env) error
}

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
	runners     []*Runner
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
func (s *Service) Runners() []*Runner { s.mu.Lock(); defer s.mu.Unlock(); return s.runners }

// Run starts everything and blocks until ctx is done, then shuts down:
// ingest first, then each stage finishes or abandons in-flight records and
// commits within the grace period, then clients and the broker close.
func (s *Service) Run(ctx context.Context) error {
	cfg := s.cfg
	brokers := cfg.Brokers
	secure, err := KafkaOpts(cfg)
	if err != nil {
		return err
	}
	s.warnKafkaSecurity()
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
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := reg.Run(bg); err != nil && bg.Err() == nil {
			errc <- fmt.Errorf("endpoint registry: %w", err)
		}
	}()
	if err := reg.WaitReady(ctx); err != nil {
		return fmt.Errorf("load endpoint registry from %s: %w", set.Endpoints, err)
	}

	metrics := NewMetrics(s.opts.Registry, cfg.MetricsEndpointLabels)
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
		Brokers: brokers, ClientOpts: secure, Topics: set, Logger: s.log,
		TenantOf: func(id string) string { e, _ := reg.Get(id); return e.Tenant },
	})
	if err != nil {
		return err
	}
	defer d.Close()
	backlog := d.NewBacklog()
	s.opts.Registry.MustRegister(newBacklogCollector(backlog))
	env := &Env{Topics: set, Brokers: brokers, KafkaOpts: secure, Client: cl, Admin: adm, Registry: reg, Metrics: metrics, Prom: s.opts.Registry, Logger: s.log}
	runners, err := s.newRunners(env)
	if err != nil {
		return err
	}
	if err := followHolds(bg, append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, secure...), set.Holds, env.Holds, s.log); err != nil {
		return fmt.Errorf("follow held keys' releases in %s: %w", set.Holds, err)
	}
	for _, r := range runners {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "hookline_stage_ready",
			Help:        "1 while the stage has joined its consumer group and been assigned its partitions, else 0.",
			ConstLabels: prometheus.Labels{"stage": r.cfg.Name},
		}, func() float64 {
			if r.Ready() {
				return 1
			}
			return 0
		})
	}

	// Stages stop only after ingest: they get their own context.
	stages, stopStages := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStages()
	var stageWG sync.WaitGroup
	for _, r := range runners {
		stageWG.Add(1)
		go func() {
			defer stageWG.Done()
			if err := r.Run(stages); err != nil {
				errc <- fmt.Errorf("stage %s: %w", r.cfg.Name, err)
			}
		}()
	}

	// Only an open API needs the Host check: a page cannot send a token it
	// does not know, and a proxy on this host may pass its own Host.
	openOnLoopback := cfg.ListenIsLoopback() && len(cfg.Tokens) == 0
	ing, err := ingest.New(ingest.Config{
		EventsTopic:       set.Events,
		MaxPayloadBytes:   cfg.MaxPayloadBytes,
		IdempotencyWindow: cfg.IdempotencyWindow,
		Registry:          reg,
		Producer:          cl,
		Logger:            s.log,
		Metrics:           s.opts.Registry,
		Tokens:            apiTokens(cfg.Tokens),
		RateLimit:         ingest.RateLimit{Rate: cfg.TokenRateLimit, Burst: cfg.TokenBurst},
		LoopbackOnly:      openOnLoopback,
		Destinations:      cfg.Destinations(),
		Held: func(ctx context.Context) ([]processors.HeldKey, error) {
			return ReadHolds(ctx, append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, secure...), set)
		},
	})
	if err != nil {
		return err
	}
	if err := ing.LoadIdempotency(ctx, cl); err != nil {
		return fmt.Errorf("rebuild idempotency index from %s: %w", set.Events, err)
	}
	if len(cfg.Tokens) == 0 {
		s.log.Warn("no API tokens configured: the ingest and admin API accepts every request; configure tokens (see docs/security.md)", "listen", cfg.Listen)
		if !cfg.ListenIsLoopback() {
			s.log.Warn("INSECURE: insecure_no_auth is on and the API listens beyond loopback without tokens: anyone who can reach it may send events and manage endpoints", "listen", cfg.Listen)
		}
	}
	ingestLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: ingest API on %s: %w", cfg.Listen, err)
	}
	limits := cfg.ServerLimits()
	ingestSrv := limits.Server(ing.Handler())
	go func() {
		if err := ingestSrv.Serve(limits.Listener(ingestLn)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ingest API: %w", err)
		}
	}()

	metricsLn, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics_listen: %s: %w", cfg.MetricsListen, err)
	}
	health := s.healthMux(runners)
	if host, _, err := net.SplitHostPort(cfg.MetricsListen); err == nil && ingest.IsLoopbackHost(host) {
		// No page in the operator's browser reads the metrics through a
		// name that resolves to 127.0.0.1.
		health = ingest.LoopbackHostOnly(health)
	}
	metricsSrv := limits.Server(health)
	go func() {
		if err := metricsSrv.Serve(limits.Listener(metricsLn)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics server: %w", err)
		}
	}()

	groups := make([]StageGroup, len(runners))
	for i, r := range runners {
		groups[i] = StageGroup{Stage: r.cfg.Name, Group: r.cfg.Group, Tier: i > 0 && r.cfg.Name != processors.StageStrict}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		MonitorLag(bg, adm, groups, backlog, metrics, 5*time.Second, s.log)
	}()
	opsRequests := operational.NewRequestsMetric(s.opts.Registry)
	if cfg.OperatorWebhook != "" {
		fw, err := operational.NewForwarder(operational.ForwarderConfig{
			URL: cfg.OperatorWebhook, Secret: cfg.OperatorWebhookSecret,
			Topic: set.Operational, Group: cfg.TopicPrefix + "operator-webhook",
			ClientOpts: append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, secure...),
			Requests:   opsRequests, Logger: s.log,
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fw.Run(bg); err != nil && bg.Err() == nil {
				errc <- fmt.Errorf("operator webhook: %w", err)
			}
		}()
	}
	for _, extra := range s.opts.Extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := extra(bg, env); err != nil && bg.Err() == nil {
				errc <- err
			}
		}()
	}

	s.mu.Lock()
	s.env, s.runners = env, runners
	s.ingestAddr, s.metricsAddr = ingestLn.Addr().String(), metricsLn.Addr().String()
	s.mu.Unlock()
	go s.watchReady(ctx, runners)
	s.log.Info("hookline serving", "ingest", s.IngestAddr(), "metrics", s.MetricsAddr(), "brokers", brokers, "partitions", cfg.Partitions)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("stopping after error", "err", runErr)
	}

	s.log.Info("shutting down", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	_ = ingestSrv.Shutdown(shutdownCtx)
	stopStages()
	stageWG.Wait()
	_ = metricsSrv.Shutdown(shutdownCtx)
	cancelBG()
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

func (s *Service) newRunners(env *Env) ([]*Runner, error) {
	cfg, set := s.cfg, env.Topics
	sender := processors.NewSender(processors.SenderOptions{Destinations: cfg.Destinations()})
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
	var runners []*Runner
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
			HandedOff:        HandedOff, Lane: Lane,
		})
		if err != nil {
			return nil, err
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
		r, err := NewRunner(RunnerConfig{
			Name:             st.name,
			Topic:            st.topic,
			Group:            cfg.TopicPrefix + "delivery." + st.name,
			TransactionalID:  cfg.TopicPrefix + "delivery." + st.name + "." + txnSuffix,
			ClientOpts:       append([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, env.KafkaOpts...),
			Stage:            Observe(d, st.name, set.DLQ, set.Attempts, env.Metrics, s.log),
			Outputs:          outputs,
			Due:              due,
			Lanes:            d.Lanes,
			Admit:            admit,
			Concurrency:      cfg.Concurrency,
			MaxInFlight:      cfg.MaxInFlight,
			MaxInFlightBytes: int64(cfg.MaxInFlightBytes),
			Grace:            cfg.ShutdownGrace,
			Logger:           s.log,
		})
		if err != nil {
			return nil, err
		}
		runners = append(runners, r)
	}
	strict, err := s.newStrictRunner(env, eventsDelivery, protection.Admit, txnSuffix)
	if err != nil {
		return nil, err
	}
	return append(runners, strict), nil
}

// apiTokens converts the configured tokens (Validate has checked them).
func apiTokens(cts []config.Token) []ingest.Token {
	out := make([]ingest.Token, 0, len(cts))
	for i, ct := range cts {
		t := ingest.Token{Name: ct.Name, Tenants: ct.Tenants}
		if t.Name == "" {
			t.Name = fmt.Sprintf("tokens[%d]", i)
		}
		d, _ := ct.Digest()
		copy(t.Hash[:], d)
		for _, sc := range ct.Scopes {
			t.Scopes = append(t.Scopes, ingest.Scope(sc))
		}
		out = append(out, t)
	}
	return out
}

// warnKafkaSecurity says loudly which Kafka security settings weaken or do
// nothing. It never logs a credential.
func (s *Service) warnKafkaSecurity() {
	cfg := s.cfg
	switch {
	case cfg.Embedded() && cfg.KafkaSecured():
		s.log.Warn("kafka_tls and kafka_sasl_* settings are ignored: no brokers are configured, and the embedded development broker listens in plaintext without authentication")
		return
	case cfg.Embedded():
		return
	}
	if cfg.KafkaTLS && cfg.KafkaTLSInsecureSkipVerify {
		s.log.Warn("INSECURE: kafka_tls_insecure_skip_verify is on: the brokers' certificates are not verified, so anyone on the network path can impersonate the cluster, read and change every record and take the SASL password; for testing only", "brokers", cfg.Brokers)
	}
	if cfg.SASLMechanism() == config.SASLPlain && !cfg.KafkaTLS {
		s.log.Warn("kafka_sasl_mechanism PLAIN without kafka_tls sends the SASL password in clear text", "brokers", cfg.Brokers)
	}
	if !cfg.KafkaTLS && cfg.SASLMechanism() == "" {
		s.log.Info("kafka connections are neither encrypted nor authenticated (kafka_tls, kafka_sasl_mechanism)", "brokers", cfg.Brokers)
	}
}

// useSecretKeys makes the registry encrypt secrets at rest with the
// configured key, or warns that they are stored in plaintext.
func (s *Service) useSecretKeys(reg *endpoints.Registry, topic string) error {
	keys, err := s.cfg.SecretKeys()
	if err != nil {
		return err
	}
	if keys == nil {
		s.log.Warn("no secret_key configured: endpoint signing secrets are stored in plaintext in the endpoints topic; set HOOKLINE_SECRET_KEY or secret_key_file (see docs/security.md)", "topic", topic)
		return nil
	}
	box, err := endpoints.NewSecretBox(keys)
	if err != nil {
		return err
	}
	reg.UseSecretBox(box)
	s.log.Info("endpoint secrets encrypted at rest", "topic", topic, "key_id", endpoints.KeyID(keys[0]), "decrypt_keys", len(keys))
	return nil
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

// provision creates the topics, waiting for a broker that is still starting,
// and returns once the client's metadata knows every topic.
func provision(ctx context.Context, set topics.Set, adm *kadm.Client, log *slog.Logger) error {
	b := backoff.NewExponentialBackOff()
	b.MaxElapsedTime = time.Minute
	return backoff.RetryNotify(func() error {
		err := KafkaAuthError(set.Provision(ctx, adm))
		if errors.Is(err, topics.ErrPartitionMismatch) || errors.Is(err, ErrKafkaAuth) {
			return backoff.Permanent(err)
		}
		if err != nil {
			return err
		}
		// kgo caches "unknown topic" for a while; asking for authorized
		// operations forces a fresh metadata request that refreshes it.
		ds, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), set.Provisioned()...)
		if err = KafkaAuthError(err); errors.Is(err, ErrKafkaAuth) {
			return backoff.Permanent(err)
		}
		if err != nil {
			return err
		}
		for _, t := range set.Provisioned() {
			if d, ok := ds[t]; !ok || d.Err != nil {
				return fmt.Errorf("topic %s not visible yet", t)
			}
		}
		// On a cluster, a broker's metadata can lag a create: wait until
		// every partition has a leader that answers for it.
		ends, err := adm.ListEndOffsets(ctx, set.Provisioned()...)
		if err != nil {
			return err
		}
		return ends.Error()
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		log.Warn("provision topics, retrying", "err", err, "wait", wait)
	})
}

func (s *Service) watchReady(ctx context.Context, runners []*Runner) {
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

func (s *Service) healthMux(runners []*Runner) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var waiting []string
		for _, r := range runners {
			if !r.Ready() {
				waiting = append(waiting, r.cfg.Name)
			}
		}
		if len(waiting) > 0 {
			http.Error(w, fmt.Sprintf("not ready: stages not yet assigned: %v", waiting), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
