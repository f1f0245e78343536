// Package test holds hookline's end-to-end tests: a whole pipeline (embedded
// broker by default, a real Kafka when HOOKLINE_TEST_BROKERS is set) against
// local receivers that verify every signature with the Standard Webhooks
// reference library.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// testScale shrinks the default 30s/2m/10m/1h tiers to 60ms/240ms/1.2s/7.2s.
const testScale = 0.002

// testBrokers returns the real Kafka to test against, if any. When
// HOOKLINE_REQUIRE_KAFKA is set, a missing broker fails instead of falling
// back to the embedded one.
func testBrokers(t testing.TB) []string {
	t.Helper()
	if b := os.Getenv("HOOKLINE_TEST_BROKERS"); b != "" {
		return strings.Split(b, ",")
	}
	if os.Getenv("HOOKLINE_REQUIRE_KAFKA") != "" {
		t.Fatal("HOOKLINE_REQUIRE_KAFKA is set but HOOKLINE_TEST_BROKERS is empty: start Kafka with deploy/kafka/kafka.sh")
	}
	return nil
}

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// testConfig is a configuration for one test: scaled tiers, free ports, its
// own data dir and, on a shared real broker, its own topic prefix.
func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Brokers = testBrokers(t)
	cfg.KafkaListen = "127.0.0.1:0"
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.TierScale = testScale
	cfg.Partitions = 4
	cfg.BreakerCooldown = 200 * time.Millisecond
	cfg.ShutdownGrace = 5 * time.Second
	cfg.TopicPrefix = fmt.Sprintf("t%d.%s.", rand.IntN(1e6), strings.ToLower(nonTopicChars.ReplaceAllString(t.Name(), "-")))
	cfg.LogLevel = "warn"
	// The receivers listen on 127.0.0.1, which the SSRF guard refuses by
	// default; test/security_test.go checks the guard itself end to end.
	cfg.AllowPrivateDestinations = true
	return cfg
}

type harness struct {
	t   testing.TB
	cfg config.Config
	svc *app.Service
	env *app.Env
	api string

	stop func()
	done chan error
}

// start runs a service in this process until the test ends.
func start(t testing.TB, cfg config.Config) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := app.NewService(app.Options{Config: cfg, Logger: log, Extra: app.AnalyticsExtras(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, cfg: cfg, svc: svc, done: make(chan error, 1)}
	go func() { h.done <- svc.Run(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("service: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			h.stop()
		}
	})
	select {
	case <-svc.Ready():
	case err := <-h.done:
		t.Fatalf("service stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("service not ready within 60s")
	}
	h.env = svc.Env()
	h.api = "http://" + svc.IngestAddr()
	return h
}

// testWriter sends logs to the test log, so they show only on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// addEndpoint registers rc as endpoint id.
func (h *harness) addEndpoint(id string, rc *receiver, timeout time.Duration) {
	h.t.Helper()
	e := endpoints.Endpoint{ID: id, URL: rc.url, Secrets: []string{rc.secret}, Enabled: true, TimeoutMS: int(timeout / time.Millisecond)}
	if err := h.env.Registry.Put(context.Background(), e); err != nil {
		h.t.Fatal(err)
	}
}

// send posts one event through the ingest API and returns its id.
func (h *harness) send(id, endpointID, key string, payload any) string {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"id": id, "type": "test.event", "endpoint_id": endpointID, "ordering_key": key, "payload": payload})
	resp, err := http.Post(h.api+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("POST /v1/events: %s: %s", resp.Status, data)
	}
	return id
}

// readTopic reads every committed record of topic until want have arrived
// (or, with want < 0, until the topic's current end).
func (h *harness) readTopic(topic string, want int, within time.Duration) []*kgo.Record {
	h.t.Helper()
	return readTopic(h.t, h.env.Brokers, topic, want, within)
}

func readTopic(t testing.TB, brokers []string, topic string, want int, within time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

// attempts decodes the attempts topic until want records arrived.
func (h *harness) attempts(want int, within time.Duration) []processors.Attempt {
	h.t.Helper()
	var out []processors.Attempt
	for _, r := range h.readTopic(h.env.Topics.Attempts, want, within) {
		a, err := processors.DecodeAttempt(r.Value)
		if err != nil {
			h.t.Fatalf("attempt record: %v", err)
		}
		out = append(out, a)
	}
	return out
}

// hit is one request a receiver got.
type hit struct {
	id     string
	at     time.Time
	body   []byte
	header http.Header
}

// receiver is a webhook endpoint that verifies every request with the
// Standard Webhooks reference library and answers as its respond func says.
type receiver struct {
	url    string
	secret string
	wh     *standardwebhooks.Webhook

	mu      sync.Mutex
	hits    []hit
	counts  map[string]int // requests per webhook-id
	ok      map[string]int // 2xx answers per webhook-id
	badSigs int
	respond func(id string, attempt int) int
	// retryAfter, when set, is sent as Retry-After with every 429 and 503.
	retryAfter string
}

func newReceiver(t testing.TB, respond func(id string, attempt int) int) *receiver {
	t.Helper()
	secret, err := endpoints.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{secret: secret, wh: wh, counts: make(map[string]int), ok: make(map[string]int), respond: respond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed once the test closes it
	t.Cleanup(func() { _ = srv.Close() })
	rc.url = "http://" + ln.Addr().String() + "/hook"
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	if err := rc.wh.Verify(body, r.Header); err != nil {
		rc.badSigs++
		rc.mu.Unlock()
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	rc.counts[id]++
	attempt := rc.counts[id]
	rc.hits = append(rc.hits, hit{id: id, at: time.Now(), body: body, header: r.Header.Clone()})
	respond, retryAfter := rc.respond, rc.retryAfter
	rc.mu.Unlock()
	status := http.StatusOK
	if respond != nil {
		status = respond(id, attempt)
	}
	if status < 0 { // hang until the client gives up
		<-r.Context().Done()
		return
	}
	if status >= 200 && status < 300 {
		rc.mu.Lock()
		rc.ok[id]++
		rc.mu.Unlock()
	}
	if retryAfter != "" && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
}

// delivered is the number of distinct webhook-ids answered 2xx, for the
// default responder (every request succeeds).
func (rc *receiver) snapshot() ([]hit, map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	counts := make(map[string]int, len(rc.counts))
	for k, v := range rc.counts {
		counts[k] = v
	}
	return append([]hit(nil), rc.hits...), counts, rc.badSigs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
