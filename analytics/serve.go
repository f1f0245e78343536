package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"

	"github.com/hookline/hookline/config"
	"github.com/hookline/hookline/pipeline"
)

// Extras runs the attempt sink beside a pipeline service when cfg names a
// ClickHouse server: it migrates the schema, then streams the attempts topic
// into ClickHouse. While ClickHouse is unreachable it keeps retrying
// (deliveries go on; attempts wait in Kafka and the sink lag metric rises).
func Extras(cfg config.Config) []func(ctx context.Context, env *pipeline.Env) error {
	if cfg.ClickHouse == "" {
		return nil
	}
	return []func(ctx context.Context, env *pipeline.Env) error{func(ctx context.Context, env *pipeline.Env) error {
		if cfg.ClickHouseTLS && cfg.ClickHouseTLSInsecureSkipVerify {
			env.Logger.Warn("INSECURE: clickhouse_tls_insecure_skip_verify is on: ClickHouse's certificate is not verified, so anyone on the network path can impersonate it and take its password; for testing only", "addr", cfg.ClickHouse)
		}
		conn, err := openClickHouse(ctx, cfg, env)
		if err != nil {
			return err
		}
		defer conn.Close()
		sink, err := NewSink(SinkConfig{
			Brokers:    env.Brokers,
			KafkaOpts:  env.KafkaOpts,
			Topic:      env.Topics.Attempts,
			Group:      cfg.TopicPrefix + "sink",
			Conn:       conn,
			Database:   cfg.ClickHouseDatabase,
			Registerer: env.Prom,
			Logger:     env.Logger,
		})
		if err != nil {
			return err
		}
		return sink.Run(ctx)
	}}
}

// openClickHouse connects and migrates, retrying until ctx ends.
func openClickHouse(ctx context.Context, cfg config.Config, env *pipeline.Env) (driver.Conn, error) {
	var conn driver.Conn
	b := backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(0), backoff.WithMaxInterval(30*time.Second))
	err := backoff.RetryNotify(func() error {
		c, err := Open(ctx, ConnOptionsFrom(cfg))
		if err != nil {
			return err
		}
		if err := Migrate(ctx, c, cfg.ClickHouseDatabase); err != nil {
			c.Close()
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
