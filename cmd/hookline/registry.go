package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// How the CLI reads the endpoints topic (endpoints, and dlq for tenants).

// openRegistry connects to Kafka and returns the endpoint registry once it
// has read the endpoints topic. writes says the verb stores secrets, so a
// missing secret_key earns a warning.
func openRegistry(ctx context.Context, cfg config.Config, writes bool) (*endpoints.Registry, [][]byte, func(), error) {
	cl, _, topicSet, err := connect(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	reg := endpoints.NewRegistry(cl, topicSet.Endpoints, slog.New(slog.NewTextHandler(io.Discard, nil)))
	keys, err := cfg.SecretKeys()
	if err != nil {
		cl.Close()
		return nil, nil, nil, err
	}
	if keys != nil {
		box, err := endpoints.NewSecretBox(keys)
		if err != nil {
			cl.Close()
			return nil, nil, nil, err
		}
		reg.UseSecretBox(box)
	} else if writes {
		fmt.Fprintln(os.Stderr, "warning: no secret_key (HOOKLINE_SECRET_KEY or --secret-key-file): secrets are stored in plaintext in the endpoints topic")
	}
	stop, err := startRegistry(ctx, reg, topicSet.Endpoints)
	if err != nil {
		cl.Close()
		return nil, nil, nil, err
	}
	return reg, keys, func() { stop(); cl.Close() }, nil
}

// startRegistry runs reg until stop is called and waits until it has read
// the endpoints topic.
func startRegistry(ctx context.Context, reg *endpoints.Registry, topic string) (stop func(), err error) {
	runCtx, cancel := context.WithCancel(ctx)
	go func() { _ = reg.Run(runCtx) }()
	waitCtx, cancelWait := context.WithTimeout(ctx, 15*time.Second)
	defer cancelWait()
	if err := reg.WaitReady(waitCtx); err != nil {
		cancel()
		return nil, fmt.Errorf("read endpoints topic %s (is Kafka reachable? --brokers, or a running serve's --kafka-listen): %w", topic, app.KafkaAuthError(err))
	}
	return cancel, nil
}
