package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
)

func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "Runs the pipeline until SIGINT or SIGTERM. With no --brokers it starts an\nembedded single-node development Kafka broker persisted under --data-dir.")
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	svc, err := app.NewService(app.Options{Config: cfg, Logger: log, Registry: newPromRegistry(), Extra: append(app.AnalyticsExtras(cfg), outboxExtras(cfg)...)})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// newFlagSet makes a subcommand's flag set whose -h prints what the command
// does before its flags.
func newFlagSet(name, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hookline %s [flags]\n\n%s\n\nFlags:\n", name, about)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func newPromRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
