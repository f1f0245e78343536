package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// What the bench scenarios share: the receiver, the events, waiting for
// deliveries, the raw POST baseline, RSS and quantiles.

// benchPayload is the payload of the bench's events (about 80 bytes).
var benchPayload = json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":"benchmark event"}`)

// benchReceiver is the local HTTP endpoint the bench delivers to.
type benchReceiver struct {
	// URL is http://host:port; endpoints add a path.
	URL string
	// Delivered counts the requests answered 2xx by the default answer.
	Delivered atomic.Int64
	srv       *http.Server
}

// startBenchReceiver listens on a free loopback port. answer, if not nil,
// answers every request (after its body is read) and reports whether it
// counts as delivered; nil answers 204 to all.
func startBenchReceiver(answer func(w http.ResponseWriter, r *http.Request) bool) (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &benchReceiver{URL: "http://" + ln.Addr().String()}
	rc.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A hanging answer lasts up to its endpoint's timeout (at most
		// endpoints.MaxTimeoutMS).
		WriteTimeout: time.Duration(endpoints.MaxTimeoutMS)*time.Millisecond + time.Minute,
		IdleTimeout:  time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if answer == nil {
				w.WriteHeader(http.StatusNoContent)
				rc.Delivered.Add(1)
				return
			}
			if answer(w, r) {
				rc.Delivered.Add(1)
			}
		}),
	}
	go func() { _ = rc.srv.Serve(ln) }() // ErrServerClosed once closed
	return rc, nil
}

// Close stops the receiver and drops its connections, hanging ones too.
func (rc *benchReceiver) Close() { _ = rc.srv.Close() }

// hangUntilClientGivesUp holds a request until the sender's timeout closes
// it (or the receiver closes), as a hanging endpoint does.
func hangUntilClientGivesUp(r *http.Request) {
	<-r.Context().Done()
}

// benchRecords builds n event records for topic: ids prefix-i, ordering
// keys spread over keys, endpoint(i) as each one's endpoint.
func benchRecords(topic, prefix string, n, keys int, endpoint func(i int) string) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		var err error
		recs[i], err = envelope.Record(topic, envelope.Event{
			ID: fmt.Sprintf("%s-%d", prefix, i), Type: "order.created", EndpointID: endpoint(i),
			OrderingKey: fmt.Sprintf("key-%d", i%keys), Payload: benchPayload,
		})
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// waitUntil polls done until it is true, the context ends or the pipeline
// stops.
func waitUntil(ctx context.Context, svcErr <-chan error, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-svcErr:
			return fmt.Errorf("pipeline stopped: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// rawPostRate POSTs n signed requests of body with conc workers using the
// same sender as the pipeline and returns requests per second.
func rawPostRate(url, secret string, body []byte, n, conc int) (float64, error) {
	// The receiver is on 127.0.0.1, which the SSRF guard refuses by default.
	sender := processors.NewSender(processors.SenderOptions{Destinations: processors.DestinationPolicy{AllowPrivate: true}, MaxIdleConnsPerHost: conc})
	defer sender.Close()
	ep := endpoints.Endpoint{ID: "bench", URL: url, Secrets: []string{secret}, Enabled: true}
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				res := sender.Send(context.Background(), ep, "bench", time.Now(), bytes.Clone(body))
				if res.Verdict != processors.Delivered {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("baseline: %d of %d posts failed", f, n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchWebhookBody is the signed body the pipeline sends for an event with
// payload: what the raw baseline posts.
func benchWebhookBody(payload json.RawMessage) []byte {
	body, _ := processors.WebhookBody(envelope.Event{ID: "bench", Type: "order.created", Payload: payload, CreatedAt: time.Now()})
	return body
}

// freshTopicPrefix gives a run on a shared broker topics of its own: a real
// Kafka keeps earlier runs' topics and offsets.
func freshTopicPrefix(cfg *config.Config, scenario string) {
	if !cfg.Embedded() && cfg.TopicPrefix == config.Default().TopicPrefix {
		cfg.TopicPrefix = "bench-" + scenario + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "."
	}
}

// brokerName is "embedded" or the configured brokers.
func brokerName(cfg config.Config) string {
	if cfg.Embedded() {
		return "embedded"
	}
	return strings.Join(cfg.Brokers, ",")
}

// peakRSS is this process's peak resident set size (VmHWM), 0 if unknown.
func peakRSS() int64 {
	return statusKB("/proc/self/status", "VmHWM:")
}

// statusKB reads a "kB" field of a /proc/<pid>/status file, 0 if unknown.
func statusKB(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// quantilesMS sorts ds and returns its p50, p99 and max in milliseconds.
func quantilesMS(ds []time.Duration) (p50, p99, mx float64) {
	slices.Sort(ds)
	return quantileMS(ds, 0.5), quantileMS(ds, 0.99), quantileMS(ds, 1)
}

// quantileMS is the p quantile of the sorted ds in milliseconds.
func quantileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))]) / float64(time.Millisecond)
}

// Quantile is one point of a distribution: the value at quantile Q.
type Quantile struct {
	Q  float64 `json:"q"`
	MS float64 `json:"ms"`
}

// distributionMS is the sorted ds at quantiles 0, 0.01, ..., 1 and 0.999:
// enough to draw its CDF.
func distributionMS(sorted []time.Duration) []Quantile {
	out := make([]Quantile, 0, 102)
	for i := 0; i <= 100; i++ {
		q := float64(i) / 100
		out = append(out, Quantile{Q: q, MS: quantileMS(sorted, q)})
		if i == 99 {
			out = append(out, Quantile{Q: 0.999, MS: quantileMS(sorted, 0.999)})
		}
	}
	return out
}

// cpuSeconds is the CPU time (user and system) this process has used so
// far: the pipeline, the embedded broker, the receiver and the load alike.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// mib formats bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// startCPUProfile writes a CPU profile to path until the returned stop is
// called (stop may be called more than once); with no path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}), nil
}

// benchPipeline is a bench receiver and a local pipeline (startLocal) that
// delivers to it, as most scenarios run them.
type benchPipeline struct {
	rc     *benchReceiver
	svc    *app.Service
	svcErr <-chan error // Run's result, once
	cancel context.CancelFunc
}

// startBenchPipeline starts a receiver (answer as in startBenchReceiver)
// and the pipeline of cfg. close releases both; stop shuts the pipeline
// down first and reports how that went.
func startBenchPipeline(ctx context.Context, cfg config.Config, answer func(w http.ResponseWriter, r *http.Request) bool) (*benchPipeline, error) {
	rc, err := startBenchReceiver(answer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	svc, svcErr, err := startLocal(ctx, cfg)
	if err != nil {
		cancel()
		rc.Close()
		return nil, err
	}
	return &benchPipeline{rc: rc, svc: svc, svcErr: svcErr, cancel: cancel}, nil
}

// waitDelivered waits until the receiver has counted n deliveries.
func (b *benchPipeline) waitDelivered(ctx context.Context, n int64) error {
	return waitUntil(ctx, b.svcErr, func() bool { return b.rc.Delivered.Load() >= n })
}

// stop shuts the pipeline down within its grace period; the receiver keeps
// answering (the raw baselines use it next).
func (b *benchPipeline) stop() error {
	b.cancel()
	if err := <-b.svcErr; err != nil {
		return fmt.Errorf("pipeline shutdown: %w", err)
	}
	return nil
}

// close cancels the pipeline without waiting for it and stops the receiver.
func (b *benchPipeline) close() {
	b.cancel()
	b.rc.Close()
}
