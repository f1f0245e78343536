package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/internal/pipeline"
)

// runGroup owns every goroutine of a serve: the stages, the HTTP servers
// and the components beside them (registry follower, holds follower, lag
// monitor, operator webhook, extras). The first error of any of them stops
// the service; wait stops them in order and returns once all have
// returned.
type runGroup struct {
	parent context.Context
	grace  time.Duration
	log    *slog.Logger

	g *errgroup.Group
	// failed is done at the first error a goroutine returns.
	failed context.Context

	// Stages stop only after ingest: they get their own context.
	stages     context.Context
	stopStages context.CancelFunc
	stagesWG   sync.WaitGroup
	// The components beside the stages stop after them.
	bg     context.Context
	stopBG context.CancelFunc

	ingest, metrics *http.Server // nil until served

	owned   map[*pipeline.Runner]bool // runners: true once started
	closers []func()
}

func newRunGroup(ctx context.Context, grace time.Duration, log *slog.Logger) *runGroup {
	rg := &runGroup{parent: ctx, grace: grace, log: log, owned: make(map[*pipeline.Runner]bool)}
	rg.g, rg.failed = errgroup.WithContext(context.WithoutCancel(ctx))
	rg.stages, rg.stopStages = context.WithCancel(context.WithoutCancel(ctx))
	rg.bg, rg.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	return rg
}

// goBackground runs f beside the stages until they have stopped. An error
// f returns before then stops the service.
func (rg *runGroup) goBackground(f func(ctx context.Context) error) {
	rg.g.Go(func() error {
		if err := f(rg.bg); err != nil && rg.bg.Err() == nil {
			return err
		}
		return nil
	})
}

// own makes rg close r after the run if r was never started.
func (rg *runGroup) own(r *pipeline.Runner) {
	if _, ok := rg.owned[r]; !ok {
		rg.owned[r] = false
	}
}

// goStage runs a stage until the stages are stopped.
func (rg *runGroup) goStage(r *pipeline.Runner) {
	rg.owned[r] = true
	rg.stagesWG.Add(1)
	rg.g.Go(func() error {
		defer rg.stagesWG.Done()
		if err := r.Run(rg.stages); err != nil {
			return fmt.Errorf("stage %s: %w", r.Name(), err)
		}
		return nil
	})
}

// serveIngest serves the ingest API on ln; it is the first to stop.
func (rg *runGroup) serveIngest(srv *http.Server, ln net.Listener) {
	rg.ingest = srv
	rg.serve(srv, ln, "ingest API")
}

// serveMetrics serves /metrics and health on ln; it stops after the
// stages, so that their drain can be watched.
func (rg *runGroup) serveMetrics(srv *http.Server, ln net.Listener) {
	rg.metrics = srv
	rg.serve(srv, ln, "metrics server")
}

func (rg *runGroup) serve(srv *http.Server, ln net.Listener, what string) {
	rg.g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// closeAfter runs f once every goroutine has returned.
func (rg *runGroup) closeAfter(f func()) { rg.closers = append(rg.closers, f) }

// wait blocks until the parent context is done or a goroutine fails (at
// once when startErr is not nil: starting failed), then shuts down within
// the grace period: ingest first, then each stage finishes or abandons its
// in-flight records and commits, then the metrics server, then the
// components beside the stages. It returns once every goroutine has
// returned and the closers have run, with startErr or the first error that
// stopped the service.
func (rg *runGroup) wait(startErr error) error {
	runErr := startErr
	if startErr == nil {
		select {
		case <-rg.parent.Done():
		case <-rg.failed.Done():
			runErr = context.Cause(rg.failed)
			rg.log.Error("stopping after error", "err", runErr)
		}
		rg.log.Info("shutting down", "grace", rg.grace)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), rg.grace)
	defer cancel()
	shutdown(shutdownCtx, rg.ingest)
	rg.stopStages()
	rg.stagesWG.Wait()
	shutdown(shutdownCtx, rg.metrics)
	rg.stopBG()
	if err := rg.g.Wait(); err != nil && !errors.Is(runErr, err) {
		rg.log.Warn("stopped with an error during shutdown", "err", err)
	}
	for r, started := range rg.owned {
		if !started {
			r.Close()
		}
	}
	for i := len(rg.closers) - 1; i >= 0; i-- {
		rg.closers[i]()
	}
	if startErr == nil {
		rg.log.Info("stopped")
	}
	return runErr
}

// shutdown stops srv, if it was served, letting requests in progress
// finish until ctx ends; then it closes the connections left, so that
// none of their goroutines outlives Run.
func shutdown(ctx context.Context, srv *http.Server) {
	if srv == nil {
		return
	}
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}
