package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
)

// localDefaults are the defaults of a command that runs a pipeline of its
// own (demo, bench): free ports and a fresh embedded broker in a temporary
// data dir, which cleanup removes, unless flags say otherwise.
func localDefaults(name string) (config.Config, func(), error) {
	d := config.Default()
	d.KafkaListen = "127.0.0.1:0"
	d.Listen = "127.0.0.1:0"
	d.MetricsListen = "127.0.0.1:0"
	tmp, err := os.MkdirTemp("", "hookline-"+name+"-")
	if err != nil {
		return d, nil, err
	}
	d.DataDir = tmp
	return d, func() { _ = os.RemoveAll(tmp) }, nil
}

// startLocal runs a pipeline service until ctx ends and returns once it is
// ready. The channel yields Run's result.
func startLocal(ctx context.Context, cfg config.Config) (*app.Service, <-chan error, error) {
	svc, err := app.NewService(app.Options{Config: cfg, Logger: newLogger(cfg), Registry: newPromRegistry(), Extra: app.AnalyticsExtras(cfg)})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
		return svc, done, nil
	case err := <-done:
		return nil, nil, fmt.Errorf("pipeline stopped before it was ready: %w", err)
	case <-time.After(time.Minute):
		return nil, nil, errors.New("pipeline not ready within a minute")
	}
}
