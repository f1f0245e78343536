package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// BenchResult is what `hookline bench --json` prints.
type BenchResult struct {
	Events            int     `json:"events"`
	Keys              int     `json:"keys"`
	Partitions        int     `json:"partitions"`
	Concurrency       int     `json:"concurrency"`
	PipelinePerSecond float64 `json:"pipeline_deliveries_per_second"`
	RawPostPerSecond  float64 `json:"raw_http_posts_per_second"`
	Ratio             float64 `json:"ratio"`
	GOMAXPROCS        int     `json:"gomaxprocs"`
}

func runBench(ctx context.Context, args []string) error {
	fs := newFlagSet("bench", `Measures end-to-end deliveries per second on the embedded broker (events
written to the events topic, signed, POSTed to a local receiver, attempts
recorded, offsets committed) and, in the same run, the raw loopback HTTP POST
rate of this machine against the same receiver with the same concurrency.
Prints both and their ratio.

--scenario tiers fills the retry tiers instead (default 50,000 events at
--rate per second, tiers scaled by 0.2, no circuit breaking): each event
fails its first 3 attempts and is delivered from the third tier, while
--retry-after-share of them go to an endpoint answering 429 with
Retry-After: --retry-after. It prints how late the others' tier attempts
went against their due times (p50, p99, max), the peak number of records
waiting in the tiers, and this process's peak RSS. With --brokers it runs
against that Kafka, under a fresh topic prefix.`)
	d, cleanup, err := localDefaults("bench")
	if err != nil {
		return err
	}
	defer cleanup()
	d.LogLevel = "warn"
	// The bench receiver listens on 127.0.0.1, which the SSRF guard refuses
	// by default.
	d.AllowPrivateDestinations = true
	d.RegisterFlags(fs)
	events := fs.Int("events", 20000, "events to deliver")
	keys := fs.Int("keys", 512, "distinct ordering keys")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the pipeline phase to `file`")
	scenario := fs.String("scenario", "e2e", "`e2e` (deliveries per second) or tiers (lateness of retries while the tiers are full)")
	rate := fs.Int("rate", 350, "tiers: events produced per second")
	retryAfter := fs.String("retry-after", "3600", "tiers: the Retry-After of the limited endpoint")
	share := fs.Float64("retry-after-share", 0.1, "tiers: share of the events sent to the limited endpoint")
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch *scenario {
	case "e2e":
	case "tiers":
		if !set["events"] {
			*events = 50000
		}
		if !set["tier-scale"] {
			cfg.TierScale = 0.2
		}
		// The endpoint fails most requests by design: a circuit breaker
		// would skip them and measure the breaker, not the tiers.
		if !set["breaker-threshold"] {
			cfg.BreakerThreshold = math.MaxInt32
		}
		if *rate < 1 || *events < 1 || !(*share >= 0 && *share < 1) {
			return errors.New("--rate and --events must be at least 1, --retry-after-share in [0,1)")
		}
		return benchTiers(ctx, cfg, *events, *share, *rate, *retryAfter, *asJSON)
	default:
		return fmt.Errorf("--scenario: %q is not e2e or tiers", *scenario)
	}
	if *events < 1 || *keys < 1 {
		return errors.New("--events and --keys must be at least 1")
	}

	var received atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = recv.Serve(ln) }() // ErrServerClosed once the bench closes it
	defer func() { _ = recv.Close() }()
	url := "http://" + ln.Addr().String() + "/hook"

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc, svcErr, err := startLocal(ctx, cfg)
	if err != nil {
		return err
	}
	env := svc.Env()
	secret, _ := endpoints.GenerateSecret()
	if err := env.Registry.Put(ctx, endpoints.Endpoint{ID: "bench", URL: url, Secrets: []string{secret}, Enabled: true}); err != nil {
		return err
	}

	payload := json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":"benchmark event"}`)
	recs := make([]*kgo.Record, *events)
	for i := range recs {
		recs[i], err = envelope.Record(env.Topics.Events, envelope.Event{
			ID: fmt.Sprintf("bench-%d", i), Type: "order.created", EndpointID: "bench",
			OrderingKey: fmt.Sprintf("key-%d", i%*keys), Payload: payload,
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: delivering %d events over %d keys, %d partitions, concurrency %d per partition\n", *events, *keys, cfg.Partitions, cfg.Concurrency)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := env.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce bench events: %w", err)
	}
	for received.Load() < int64(*events) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-svcErr:
			return fmt.Errorf("pipeline stopped: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	pipelineRate := float64(*events) / time.Since(start).Seconds()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	cancel()
	if err := <-svcErr; err != nil {
		return fmt.Errorf("pipeline shutdown: %w", err)
	}

	// The baseline: the same receiver, the same signed body, the same number
	// of concurrent requests, no Kafka.
	body, _ := processors.WebhookBody(envelope.Event{ID: "bench", Type: "order.created", Payload: payload, CreatedAt: time.Now()})
	conc := min(cfg.Concurrency*cfg.Partitions, *keys)
	rawRate, err := rawPostRate(url, secret, body, *events, conc)
	if err != nil {
		return err
	}
	res := BenchResult{
		Events: *events, Keys: *keys, Partitions: cfg.Partitions, Concurrency: cfg.Concurrency,
		PipelinePerSecond: pipelineRate, RawPostPerSecond: rawRate, Ratio: pipelineRate / rawRate,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("pipeline end to end   %8.0f deliveries/s\nraw loopback POST     %8.0f posts/s (%d concurrent)\nratio                 %8.2f\n",
		res.PipelinePerSecond, res.RawPostPerSecond, conc, res.Ratio)
	return nil
}

// rawPostRate POSTs n signed requests with conc workers using the same
// sender as the pipeline and returns requests per second.
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
