package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/outbox"
	"github.com/hookline/hookline/internal/topics"
)

// runOutbox runs the outbox relay alone, beside a serve elsewhere.
func runOutbox(ctx context.Context, args []string) error {
	fs := newFlagSet("outbox", `Relays a PostgreSQL outbox table to the events topic: every committed row
once, in order per ordering key, deleted once published (docs/outbox.md).
Run several for fail-over: one holds the table's lock and relays, the others
stand by. Kafka settings (--brokers, TLS, --topic-prefix) are serve's; with
no --brokers it connects to a running serve's embedded broker. /metrics is
served on --metrics-listen.`)
	d := config.Default()
	d.RegisterFlags(fs)
	dsn := fs.String("postgres", "", "PostgreSQL `DSN` of the database with the outbox table (the same as --outbox-postgres)")
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dsn != "" {
		cfg.OutboxPostgres = *dsn
	}
	if cfg.OutboxPostgres == "" {
		return errors.New("--postgres: a PostgreSQL DSN is required (or HOOKLINE_OUTBOX_POSTGRES)")
	}
	log := newLogger(cfg)
	kopts, err := app.KafkaOpts(cfg)
	if err != nil {
		return err
	}
	set := topics.New(cfg.TopicPrefix, cfg.Tiers, cfg.TierScale, int32(cfg.Partitions), int16(cfg.ReplicationFactor))
	brokers := cfg.Brokers
	if cfg.Embedded() {
		brokers = []string{cfg.KafkaListen}
	}
	reg := newPromRegistry()
	relay, err := newRelay(cfg, brokers, kopts, set, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics_listen: %w", err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	log.Info("outbox relay starting", "table", cfg.OutboxTable, "brokers", brokers, "metrics", ln.Addr().String())
	return relay.Run(ctx)
}

// outboxExtras runs the relay inside serve when outbox_postgres is set.
func outboxExtras(cfg config.Config) []app.Extra {
	if cfg.OutboxPostgres == "" {
		return nil
	}
	return []app.Extra{func(ctx context.Context, env *app.Env) error {
		relay, err := newRelay(cfg, env.Brokers, env.KafkaOpts, env.Topics, env.Prom, env.Logger)
		if err != nil {
			return err
		}
		return relay.Run(ctx)
	}}
}

func newRelay(cfg config.Config, brokers []string, kopts []kgo.Opt, set topics.Set, reg prometheus.Registerer, log *slog.Logger) (*outbox.Relay, error) {
	return outbox.New(outbox.Config{
		DSN:               cfg.OutboxPostgres,
		Table:             cfg.OutboxTable,
		Brokers:           brokers,
		KafkaOpts:         kopts,
		EventsTopic:       set.Events,
		DLQTopic:          set.DLQ,
		StateTopic:        cfg.TopicPrefix + "outbox-state",
		ReplicationFactor: cfg.ReplicationFactor,
		TransactionalID:   cfg.TopicPrefix + "outbox-relay." + cfg.OutboxTable,
		Batch:             cfg.OutboxBatch,
		Poll:              cfg.OutboxPoll,
		Registerer:        reg,
		Logger:            log.With("component", "outbox"),
	})
}
