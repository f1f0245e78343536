package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// Defaults of Config.
const (
	DefaultMaxPayloadBytes   = 256 << 10
	DefaultMaxBatchBytes     = 8 << 20
	DefaultIdempotencyWindow = 24 * time.Hour
	DefaultMaxBatch          = 500
	DefaultProduceTimeout    = 10 * time.Second
	DefaultSnapshotInterval  = 5 * time.Minute
)

// envelopeOverhead is what a single-event request body may carry beyond its
// payload: id, type, address, ordering key and JSON punctuation.
const envelopeOverhead = 16 << 10

// Producer writes records synchronously; *kgo.Client satisfies it.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Registry is what the API needs of the endpoint registry;
// *endpoints.Registry satisfies it.
type Registry interface {
	endpoints.Lookup
	List() []endpoints.Endpoint
	Create(ctx context.Context, e endpoints.Endpoint) error
	Update(ctx context.Context, id string, change func(*endpoints.Endpoint) error) error
	Delete(ctx context.Context, id string) error
}

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// EventsTopic is the topic accepted events are written to.
	EventsTopic string
	// MaxPayloadBytes bounds the payload of one event (413 above it).
	MaxPayloadBytes int
	// MaxBatchBytes bounds the body of a batch request (413 above it).
	MaxBatchBytes int
	// IdempotencyWindow is how long a dedupe key is remembered.
	IdempotencyWindow time.Duration
	// SnapshotPath is the file the dedupe index is saved to, so a start
	// reads only the events written since; "" saves nothing.
	SnapshotPath string
	// SnapshotInterval is how often the snapshot is written while running;
	// it is written once more on shutdown.
	SnapshotInterval time.Duration
	// MaxBatch bounds the number of events in a batch request.
	MaxBatch int
	// ProduceTimeout bounds the write of an accepted request to Kafka. It
	// does not end when the client goes away: a write that may have landed
	// must be recorded for dedupe.
	ProduceTimeout time.Duration
	Registry       Registry
	Producer       Producer
	Now            func() time.Time
	Logger         *slog.Logger
	// Metrics registers hookline_ingest_requests_total; nil registers nothing.
	Metrics prometheus.Registerer
	// Tokens are the bearer tokens the API accepts. None: every request is
	// accepted (the caller warns at startup).
	Tokens []Token
	// RateLimit applies to each token separately.
	RateLimit RateLimit
	// LoopbackOnly refuses requests whose Host header does not name a
	// loopback address (localhost, 127.0.0.1, [::1]): set it when the API
	// listens on loopback, so a web page whose name resolves to 127.0.0.1
	// (DNS rebinding) cannot reach it from a browser.
	LoopbackOnly bool
	// Destinations refuses endpoint URLs that name a refused address
	// literally (http://127.0.0.1/...), with 400, as delivery would refuse
	// them. The zero value is the safe default.
	Destinations processors.DestinationPolicy
	// Held reads the held keys of strict endpoints (the holds topic), for
	// GET /v1/endpoints/{id}/held; nil answers 501.
	Held func(ctx context.Context) ([]processors.HeldKey, error)
}

// Server is the ingest HTTP API.
type Server struct {
	cfg    Config
	dedupe *dedupe
	// follow tails the events topic into dedupe; nil until LoadIdempotency
	// (the index then knows only this process's writes).
	follow   *follower
	requests *prometheus.CounterVec
	handler  http.Handler
}

// New checks cfg, fills in defaults and returns a Server. Call
// LoadIdempotency before serving, and run FollowIdempotency while serving,
// so dedupe survives a restart and spans every process.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.EventsTopic == "":
		return nil, errors.New("ingest config: EventsTopic is required")
	case cfg.Registry == nil:
		return nil, errors.New("ingest config: Registry is required")
	case cfg.Producer == nil:
		return nil, errors.New("ingest config: Producer is required")
	case cfg.MaxPayloadBytes < 0, cfg.MaxBatchBytes < 0, cfg.MaxBatch < 0, cfg.IdempotencyWindow < 0, cfg.ProduceTimeout < 0, cfg.SnapshotInterval < 0:
		return nil, errors.New("ingest config: limits must not be negative")
	case cfg.RateLimit.Rate < 0 || math.IsNaN(cfg.RateLimit.Rate) || math.IsInf(cfg.RateLimit.Rate, 0):
		return nil, errors.New("ingest config: RateLimit.Rate must be a non-negative number")
	}
	if cfg.MaxPayloadBytes == 0 {
		cfg.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.IdempotencyWindow == 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.ProduceTimeout == 0 {
		cfg.ProduceTimeout = DefaultProduceTimeout
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		dedupe: newDedupe(cfg.IdempotencyWindow, cfg.Now),
		requests: promauto.With(cfg.Metrics).NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_ingest_requests_total",
			Help: "Ingest API requests by route pattern and HTTP status.",
		}, []string{"route", "status"}),
	}

	// Each route checks its own scope, inside the mux, so that observe still
	// sees the pattern that served the request.
	// Writes must say they are JSON, token or not: a browser cannot send
	// that cross-site without a CORS preflight, which is never granted.
	guard := func(_ Scope, h http.HandlerFunc) http.Handler { return requireJSON(h) }
	if len(cfg.Tokens) > 0 {
		a := newAuth(cfg.Tokens, cfg.RateLimit, cfg.Now)
		guard = func(scope Scope, h http.HandlerFunc) http.Handler { return a.wrap(scope, requireJSON(h).ServeHTTP) }
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/events", guard(ScopeIngest, s.postEvent))
	mux.Handle("POST /v1/events/batch", guard(ScopeIngest, s.postBatch))
	mux.Handle("POST /v1/endpoints", guard(ScopeAdmin, s.createEndpoint))
	mux.Handle("GET /v1/endpoints", guard(ScopeAdmin, s.listEndpoints))
	mux.Handle("GET /v1/endpoints/{id}", guard(ScopeAdmin, s.getEndpoint))
	mux.Handle("PATCH /v1/endpoints/{id}", guard(ScopeAdmin, s.patchEndpoint))
	mux.Handle("DELETE /v1/endpoints/{id}", guard(ScopeAdmin, s.deleteEndpoint))
	mux.Handle("POST /v1/endpoints/{id}/rotate-secret", guard(ScopeAdmin, s.rotateSecret))
	mux.Handle("GET /v1/endpoints/{id}/held", guard(ScopeAdmin, s.heldKeys))
	// The method-less patterns only catch what the ones above do not, so
	// wrong methods and unknown paths get a JSON answer too.
	mux.Handle("/v1/events", methodNotAllowed("POST"))
	mux.Handle("/v1/events/batch", methodNotAllowed("POST"))
	mux.Handle("/v1/endpoints", methodNotAllowed("GET, HEAD, POST"))
	mux.Handle("/v1/endpoints/{id}", methodNotAllowed("GET, HEAD, PATCH, DELETE"))
	mux.Handle("/v1/endpoints/{id}/rotate-secret", methodNotAllowed("POST"))
	mux.Handle("/v1/endpoints/{id}/held", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route", "")
	})
	var h http.Handler = mux
	if cfg.LoopbackOnly {
		h = LoopbackHostOnly(h)
	}
	s.handler = s.observe(h)
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.handler }

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here; use %s", r.Method, allow), "")
	})
}

// observe counts every request by the pattern that served it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
