package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// listeners are the HTTP listeners of a serve, opened before anything
// starts.
type listeners struct {
	ingest, metrics net.Listener
}

// openListeners opens the ingest API's and the metrics server's listeners.
func openListeners(cfg config.Config) (*listeners, error) {
	ingestLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: ingest API on %s: %w", cfg.Listen, err)
	}
	metricsLn, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		_ = ingestLn.Close()
		return nil, fmt.Errorf("metrics_listen: %s: %w", cfg.MetricsListen, err)
	}
	return &listeners{ingest: ingestLn, metrics: metricsLn}, nil
}

// close closes listeners that no server took (a server's Shutdown closes
// its own; closing again does no harm).
func (l *listeners) close() {
	_ = l.ingest.Close()
	_ = l.metrics.Close()
}

// newIngest builds the ingest and admin API.
func (s *Service) newIngest(env *Env) (*ingest.Server, error) {
	cfg, set := s.cfg, env.Topics
	// Only an open API needs the Host check: a page cannot send a token it
	// does not know, and a proxy on this host may pass its own Host.
	openOnLoopback := cfg.ListenIsLoopback() && len(cfg.Tokens) == 0
	return ingest.New(ingest.Config{
		EventsTopic:       set.Events,
		MaxPayloadBytes:   cfg.MaxPayloadBytes,
		IdempotencyWindow: cfg.IdempotencyWindow,
		SnapshotPath:      filepath.Join(cfg.DataDir, "idempotency", set.Events+".snapshot"),
		Registry:          env.Registry,
		Producer:          env.Client,
		Logger:            s.log,
		Metrics:           s.opts.Registry,
		Tokens:            apiTokens(cfg.Tokens),
		RateLimit:         ingest.RateLimit{Rate: cfg.TokenRateLimit, Burst: cfg.TokenBurst},
		LoopbackOnly:      openOnLoopback,
		Destinations:      cfg.Destinations(),
		Held: func(ctx context.Context) ([]processors.HeldKey, error) {
			return ReadHolds(ctx, env.clientOpts(), set)
		},
	})
}

// warnOpenAPI says loudly that an API without tokens accepts every request.
func (s *Service) warnOpenAPI() {
	cfg := s.cfg
	if len(cfg.Tokens) > 0 {
		return
	}
	s.log.Warn("no API tokens configured: the ingest and admin API accepts every request; configure tokens (see docs/security.md)", "listen", cfg.Listen)
	if !cfg.ListenIsLoopback() {
		s.log.Warn("INSECURE: insecure_no_auth is on and the API listens beyond loopback without tokens: anyone who can reach it may send events and manage endpoints", "listen", cfg.Listen)
	}
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

// healthMux serves /metrics, /healthz and /readyz.
func (s *Service) healthMux(runners []*pipeline.Runner) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var waiting []string
		for _, r := range runners {
			if !r.Ready() {
				waiting = append(waiting, r.Name())
			}
		}
		if len(waiting) > 0 {
			http.Error(w, fmt.Sprintf("not ready: stages not yet assigned: %v", waiting), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	var h http.Handler = mux
	if host, _, err := net.SplitHostPort(s.cfg.MetricsListen); err == nil && ingest.IsLoopbackHost(host) {
		// No page in the operator's browser reads the metrics through a
		// name that resolves to 127.0.0.1.
		h = ingest.LoopbackHostOnly(h)
	}
	return h
}
