package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// BenchResult is what `hookline bench --scenario e2e` (and keys) prints
// with --json.
type BenchResult struct {
	Scenario          string  `json:"scenario"`
	Events            int     `json:"events"`
	Keys              int     `json:"keys"`
	Partitions        int     `json:"partitions"`
	Concurrency       int     `json:"concurrency"`
	PipelinePerSecond float64 `json:"pipeline_deliveries_per_second"`
	RawPostPerSecond  float64 `json:"raw_http_posts_per_second"`
	Ratio             float64 `json:"ratio"`
	GOMAXPROCS        int     `json:"gomaxprocs"`
	// PeakRSSBytes is the whole bench process's, the embedded broker (which
	// keeps every record in memory) included.
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	Broker       string `json:"broker"`
	rawConc      int
}

func (r BenchResult) table(w io.Writer) {
	fmt.Fprintf(w, "pipeline end to end   %8.0f deliveries/s (%d events, %d keys, %d partitions)\nraw loopback POST     %8.0f posts/s (%d concurrent)\nratio                 %8.2f\npeak RSS              %8s\n",
		r.PipelinePerSecond, r.Events, r.Keys, r.Partitions, r.RawPostPerSecond, r.rawConc, r.Ratio, mib(r.PeakRSSBytes))
}

// benchE2E writes the events to the events topic, times them until the
// receiver has answered the last one, then measures the raw POST rate of
// the same receiver with the same body and concurrency.
func benchE2E(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error) {
	freshTopicPrefix(&cfg, o.scenario)
	bp, err := startBenchPipeline(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	defer bp.close()
	url := bp.rc.URL + "/hook"
	env := bp.svc.Env()
	secret, _ := endpoints.GenerateSecret()
	if err := env.Registry.Put(ctx, endpoints.Endpoint{ID: "bench", URL: url, Secrets: []string{secret}, Enabled: true}); err != nil {
		return nil, err
	}
	recs, err := benchRecords(env.Topics.Events, "bench", o.events, o.keys, func(int) string { return "bench" })
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.progress, "bench: delivering %d events over %d keys, %d partitions, concurrency %d per partition\n", o.events, o.keys, cfg.Partitions, cfg.Concurrency)
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	start := time.Now()
	if err := env.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("produce bench events: %w", err)
	}
	if err := bp.waitDelivered(ctx, int64(o.events)); err != nil {
		return nil, err
	}
	pipelineRate := float64(o.events) / time.Since(start).Seconds()
	stopProfile()
	if err := bp.stop(); err != nil {
		return nil, err
	}

	// The baseline: the same receiver, the same signed body, the same number
	// of concurrent requests, no Kafka.
	conc := min(cfg.Concurrency*cfg.Partitions, o.keys)
	rawRate, err := rawPostRate(url, secret, benchWebhookBody(benchPayload), o.events, conc)
	if err != nil {
		return nil, err
	}
	return BenchResult{
		Scenario: o.scenario, Events: o.events, Keys: o.keys, Partitions: cfg.Partitions, Concurrency: cfg.Concurrency,
		PipelinePerSecond: pipelineRate, RawPostPerSecond: rawRate, Ratio: pipelineRate / rawRate,
		GOMAXPROCS: runtime.GOMAXPROCS(0), PeakRSSBytes: peakRSS(), Broker: brokerName(cfg), rawConc: conc,
	}, nil
}
