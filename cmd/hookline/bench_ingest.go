package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// ingestEventBytes is the size of one event as a client posts it.
const ingestEventBytes = 500

// IngestResult is what `hookline bench --scenario ingest --json` prints.
// Every rate is events per second; an end-to-end rate runs from the first
// request (or produce) until the receiver has answered the last delivery.
type IngestResult struct {
	Scenario   string `json:"scenario"`
	Events     int    `json:"events"`
	Keys       int    `json:"keys"`
	Partitions int    `json:"partitions"`
	Clients    int    `json:"clients"`
	BatchSize  int    `json:"batch_size"`
	EventBytes int    `json:"event_bytes"`
	// Single: one event per POST /v1/events.
	SingleAcceptedPerSecond float64 `json:"single_accepted_per_second"`
	SinglePerSecond         float64 `json:"single_end_to_end_per_second"`
	SingleP50MS             float64 `json:"single_request_ms_p50"`
	SingleP99MS             float64 `json:"single_request_ms_p99"`
	// Batch: BatchSize events per POST /v1/events/batch.
	BatchAcceptedPerSecond float64 `json:"batch_accepted_per_second"`
	BatchPerSecond         float64 `json:"batch_end_to_end_per_second"`
	// Produce: the same events written straight to the events topic.
	ProducePerSecond float64 `json:"direct_produce_end_to_end_per_second"`
	// RawPostPerSecond is the loopback POST rate of the receiver with the
	// pipeline's signed body at Clients concurrent requests, no Kafka.
	RawPostPerSecond float64 `json:"raw_http_posts_per_second"`
	SingleRatio      float64 `json:"single_ratio"`
	BatchRatio       float64 `json:"batch_ratio"`
	ProduceRatio     float64 `json:"direct_produce_ratio"`
	// CPU seconds of the whole bench process (API, pipeline, embedded
	// broker, receiver and clients) during each pass.
	SingleCPUSeconds  float64 `json:"single_cpu_seconds"`
	BatchCPUSeconds   float64 `json:"batch_cpu_seconds"`
	ProduceCPUSeconds float64 `json:"direct_produce_cpu_seconds"`
	// BatchVsProduce is batch end to end over direct produce end to end.
	BatchVsProduce float64 `json:"batch_vs_direct_produce"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	Broker         string  `json:"broker"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
}

func (r IngestResult) table(w io.Writer) {
	fmt.Fprintf(w, "%d events of %d B, %d keys, %d partitions, %d keep-alive clients\n", r.Events, r.EventBytes, r.Keys, r.Partitions, r.Clients)
	fmt.Fprintf(w, "%-34s %10s %12s %7s %6s\n", "", "accepted/s", "end to end/s", "ratio", "CPU s")
	fmt.Fprintf(w, "%-34s %10.0f %12.0f %7.2f %6.1f   (request p50 %.1f ms, p99 %.1f ms)\n", "POST /v1/events", r.SingleAcceptedPerSecond, r.SinglePerSecond, r.SingleRatio, r.SingleCPUSeconds, r.SingleP50MS, r.SingleP99MS)
	fmt.Fprintf(w, "%-34s %10.0f %12.0f %7.2f %6.1f   (%.2f x direct produce)\n", fmt.Sprintf("POST /v1/events/batch (%d each)", r.BatchSize), r.BatchAcceptedPerSecond, r.BatchPerSecond, r.BatchRatio, r.BatchCPUSeconds, r.BatchVsProduce)
	fmt.Fprintf(w, "%-34s %10s %12.0f %7.2f %6.1f\n", "direct Kafka produce", "", r.ProducePerSecond, r.ProduceRatio, r.ProduceCPUSeconds)
	fmt.Fprintf(w, "%-34s %10s %12.0f\npeak RSS %s\n", "raw loopback POST", "", r.RawPostPerSecond, mib(r.PeakRSSBytes))
}

// benchIngest runs the pipeline with API authentication on (a bench token,
// no rate limit) and sends the same kind of event three ways, each timed
// until delivered: single API requests, batch API requests, direct produce.
// Then it measures the raw POST rate of the same receiver.
func benchIngest(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error) {
	if o.clients < 1 || o.batchSize < 1 {
		return nil, errors.New("--clients and --batch-size must be at least 1")
	}
	freshTopicPrefix(&cfg, o.scenario)
	token := "bench-" + newRunID() + newRunID()
	cfg.Tokens = append(cfg.Tokens, config.Token{Name: "bench", Hash: config.HashToken(token), Scopes: []string{config.ScopeIngest, config.ScopeAdmin}})
	if !o.set["token-rate-limit"] {
		cfg.TokenRateLimit = 0 // the bench's clients are the load
	}
	bp, err := startBenchPipeline(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	defer bp.close()
	url := bp.rc.URL + "/hook"
	tr := &http.Transport{MaxIdleConns: o.clients, MaxIdleConnsPerHost: o.clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	api := &apiClient{base: "http://" + bp.svc.IngestAddr(), token: token, http: &http.Client{Transport: tr, Timeout: time.Minute}}
	secret, _ := endpoints.GenerateSecret()
	ep, _ := json.Marshal(map[string]any{"id": "bench", "url": url, "secret": secret})
	if err := api.post(ctx, "/v1/endpoints", ep, http.StatusCreated, nil); err != nil {
		return nil, fmt.Errorf("create the bench endpoint: %w", err)
	}
	payload := ingestPayload()
	res := IngestResult{Scenario: o.scenario, Events: o.events, Keys: o.keys, Partitions: cfg.Partitions, Clients: o.clients, BatchSize: o.batchSize,
		EventBytes: len(ingestEvent("single", 0, o.keys, payload)), Broker: brokerName(cfg), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	fmt.Fprintf(o.progress, "bench ingest: %d events of about %d B, %d keys, %d clients, batches of %d, %d partitions\n",
		o.events, res.EventBytes, o.keys, o.clients, o.batchSize, cfg.Partitions)
	var target int64

	// Single events.
	var mu sync.Mutex
	var latencies []time.Duration
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	cpu := cpuSeconds()
	start := time.Now()
	err = inParallel(ctx, o.clients, o.events, func(ctx context.Context, i int) error {
		t := time.Now()
		if err := api.post(ctx, "/v1/events", ingestEvent("single", i, o.keys, payload), http.StatusAccepted, nil); err != nil {
			return err
		}
		d := time.Since(t)
		mu.Lock()
		latencies = append(latencies, d)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("single events: %w", err)
	}
	res.SingleAcceptedPerSecond = float64(o.events) / time.Since(start).Seconds()
	target += int64(o.events)
	if err := bp.waitDelivered(ctx, target); err != nil {
		return nil, err
	}
	res.SinglePerSecond = float64(o.events) / time.Since(start).Seconds()
	res.SingleCPUSeconds = cpuSeconds() - cpu
	stopProfile()
	slices.Sort(latencies)
	res.SingleP50MS, res.SingleP99MS = quantileMS(latencies, 0.5), quantileMS(latencies, 0.99)

	// Batches.
	batches := (o.events + o.batchSize - 1) / o.batchSize
	cpu = cpuSeconds()
	start = time.Now()
	err = inParallel(ctx, o.clients, batches, func(ctx context.Context, b int) error {
		var body bytes.Buffer
		body.WriteString(`{"events":[`)
		for i := b * o.batchSize; i < min((b+1)*o.batchSize, o.events); i++ {
			if i > b*o.batchSize {
				body.WriteByte(',')
			}
			body.Write(ingestEvent("batch", i, o.keys, payload))
		}
		body.WriteString(`]}`)
		return api.post(ctx, "/v1/events/batch", body.Bytes(), http.StatusAccepted, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("batches: %w", err)
	}
	res.BatchAcceptedPerSecond = float64(o.events) / time.Since(start).Seconds()
	target += int64(o.events)
	if err := bp.waitDelivered(ctx, target); err != nil {
		return nil, err
	}
	res.BatchPerSecond = float64(o.events) / time.Since(start).Seconds()
	res.BatchCPUSeconds = cpuSeconds() - cpu

	// Direct produce, as e2e does it.
	env := bp.svc.Env()
	recs := make([]*kgo.Record, o.events)
	for i := range recs {
		if recs[i], err = envelope.Record(env.Topics.Events, envelope.Event{
			ID: fmt.Sprintf("produce-%d", i), Type: "order.created", EndpointID: "bench",
			OrderingKey: fmt.Sprintf("key-%d", i%o.keys), Payload: payload,
		}); err != nil {
			return nil, err
		}
	}
	cpu = cpuSeconds()
	start = time.Now()
	if err := env.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("produce bench events: %w", err)
	}
	target += int64(o.events)
	if err := bp.waitDelivered(ctx, target); err != nil {
		return nil, err
	}
	res.ProducePerSecond = float64(o.events) / time.Since(start).Seconds()
	res.ProduceCPUSeconds = cpuSeconds() - cpu
	if err := bp.stop(); err != nil {
		return nil, err
	}

	if res.RawPostPerSecond, err = rawPostRate(url, secret, benchWebhookBody(payload), o.events, o.clients); err != nil {
		return nil, err
	}
	res.SingleRatio = res.SinglePerSecond / res.RawPostPerSecond
	res.BatchRatio = res.BatchPerSecond / res.RawPostPerSecond
	res.ProduceRatio = res.ProducePerSecond / res.RawPostPerSecond
	res.BatchVsProduce = res.BatchPerSecond / res.ProducePerSecond
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// ingestPayload pads the bench payload so that an event as posted is about
// ingestEventBytes long.
func ingestPayload() json.RawMessage {
	base := len(ingestEvent("single", 0, 1, json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":""}`)))
	return json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":"` + strings.Repeat("x", max(ingestEventBytes-base, 0)) + `"}`)
}

// ingestEvent is event i of a phase as a client posts it.
func ingestEvent(phase string, i, keys int, payload json.RawMessage) []byte {
	return fmt.Appendf(nil, `{"id":"%s-%07d","type":"order.created","endpoint_id":"bench","ordering_key":"key-%d","payload":%s}`, phase, i, i%keys, payload)
}

// inParallel runs do(0..n-1) on workers goroutines and returns the first
// error, after which no more calls start.
func inParallel(ctx context.Context, workers, n int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
