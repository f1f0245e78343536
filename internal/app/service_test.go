package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
)

// A listener that cannot bind stops serve before anything started: no
// embedded broker, no stage, nothing left running (TestMain checks for
// goroutines).
func TestServeWithAnAddressInUseStartsNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	for name, take := range map[string]func(*config.Config){
		"listen":         func(c *config.Config) { c.Listen = taken.Addr().String() },
		"metrics_listen": func(c *config.Config) { c.MetricsListen = taken.Addr().String() },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.KafkaListen = "127.0.0.1:0"
			cfg.Listen = "127.0.0.1:0"
			cfg.MetricsListen = "127.0.0.1:0"
			take(&cfg)
			svc, err := NewService(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = svc.Run(ctx)
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Run = %v, want address already in use", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "kafka")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the embedded broker's data directory exists (%v): the broker started before the bind failed", err)
			}
		})
	}
}

// A component that fails once everything runs stops the whole serve: Run
// returns its error, after every stage and listener has stopped (TestMain
// checks that no goroutine is left).
func TestServeStopsEverythingWhenAComponentFails(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.KafkaListen = "127.0.0.1:0"
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.Partitions = 2
	cfg.ShutdownGrace = 5 * time.Second
	boom := errors.New("boom")
	svc, err := NewService(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Extra: []Extra{
		func(ctx context.Context, env *Env) error { return boom },
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := svc.Run(ctx); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the component's error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its context ended")
	}
	for _, addr := range []string{svc.IngestAddr(), svc.MetricsAddr()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			t.Errorf("%s still accepts connections after Run returned", addr)
		}
	}
}

// A serve that stops leaves a snapshot of its idempotency index in its
// data dir, so its next start reads only the events written after it.
func TestServeLeavesAnIdempotencySnapshot(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.KafkaListen = "127.0.0.1:0"
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.Partitions = 2
	cfg.ShutdownGrace = 5 * time.Second
	svc, err := NewService(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	snaps, _ := filepath.Glob(filepath.Join(cfg.DataDir, "idempotency", "*.snapshot"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots in the data dir after a stop: %v, want one", snaps)
	}
}
