package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/config"
)

// Env is what the analytics components need from the running service.
type Env struct {
	// Brokers and KafkaOpts connect to the cluster (seed brokers; TLS, SASL).
	Brokers   []string
	KafkaOpts []kgo.Opt
	// AttemptsTopic is the topic the sink streams into ClickHouse.
	AttemptsTopic string
	// Registerer receives the sink's metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Extra is one analytics component; it runs until ctx ends.
type Extra func(ctx context.Context, env Env) error

// Extras runs the attempt sink beside a serve when cfg names a
// ClickHouse server: it migrates the schema, then streams the attempts topic
// into ClickHouse. While ClickHouse is unreachable it keeps retrying
// (deliveries go on; attempts wait in Kafka and the sink lag metric rises).
func Extras(cfg config.Config) []Extra {
	if cfg.ClickHouse == "" {
		return nil
	}
	return []Extra{pruner(cfg), func(ctx context.Context, env Env) error {
		if cfg.ClickHouseTLS && cfg.ClickHouseTLSInsecureSkipVerify {
			env.Logger.Warn("INSECURE: clickhouse_tls_insecure_skip_verify is on: ClickHouse's certificate is not verified, so anyone on the network path can impersonate it and take its password; for testing only", "addr", cfg.ClickHouse)
		}
		conn, err := openClickHouse(ctx, cfg, env)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		sink, err := NewSink(SinkConfig{
			Brokers:    env.Brokers,
			KafkaOpts:  env.KafkaOpts,
			Topic:      env.AttemptsTopic,
			Group:      cfg.TopicPrefix + "sink",
			Conn:       conn,
			Database:   cfg.ClickHouseDatabase,
			Registerer: env.Registerer,
			Logger:     env.Logger,
		})
		if err != nil {
			return err
		}
		return sink.Run(ctx)
	}}
}

// PruneInterval is how often serve drops expired partitions on servers
// without TTL.
const PruneInterval = time.Hour

// pruner keeps the retention on servers without TTL (18.x): it drops the
// expired monthly partitions at start and every PruneInterval. Where the
// server has TTL it returns at once. A failed prune is logged and tried
// again next time; it never stops serve.
func pruner(cfg config.Config) Extra {
	return func(ctx context.Context, env Env) error {
		conn, err := openClickHouse(ctx, cfg, env)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		f, err := DetectFlavor(conn)
		if err != nil || f.Modern() {
			return nil // TTL keeps the retention; or the sink reports the server
		}
		runPruner(ctx, conn, cfg.ClickHouseDatabase, RetentionFrom(cfg), PruneInterval, env.Logger)
		return nil
	}
}

// runPruner prunes now and then every interval until ctx ends, logging
// every partition it drops.
func runPruner(ctx context.Context, conn driver.Conn, database string, r Retention, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		dropped, err := Prune(ctx, conn, database, r, time.Now())
		for _, p := range dropped {
			log.Info("dropped clickhouse partition older than the retention", "table", database+"."+p.Table, "partition", p.Partition, "rows", p.Rows, "before", p.Before.UTC().Format(time.RFC3339))
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("clickhouse retention: prune failed; trying again later", "err", err, "retry_in", every)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openClickHouse connects and migrates, retrying until ctx ends.
func openClickHouse(ctx context.Context, cfg config.Config, env Env) (driver.Conn, error) {
	var conn driver.Conn
	b := backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(0), backoff.WithMaxInterval(30*time.Second))
	err := backoff.RetryNotify(func() error {
		c, err := Open(ctx, ConnOptionsFrom(cfg))
		if err != nil {
			return err
		}
		if err := MigrateRetention(ctx, c, cfg.ClickHouseDatabase, RetentionFrom(cfg)); err != nil {
			_ = c.Close()
			return err
		}
		conn = c
		return nil
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		if errors.Is(err, ErrAuth) {
			// Deliveries go on; the sink waits for the credentials to be
			// fixed (here or on the server) rather than stopping serve.
			env.Logger.Error("clickhouse refused hookline's credentials; attempts wait in kafka", "addr", cfg.ClickHouse, "user", cfg.ClickHouseUsername, "err", err, "retry_in", wait)
			return
		}
		env.Logger.Warn("clickhouse not ready; attempts wait in kafka", "addr", cfg.ClickHouse, "err", err, "retry_in", wait)
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.ClickHouse, err)
	}
	return conn, nil
}
