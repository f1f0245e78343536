package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/config"
)

// demoTierScale makes the 30s/2m/10m/1h schedule take about 17 s in all.
const demoTierScale = 0.004

// demoDatabase is where `demo --clickhouse` writes unless
// --clickhouse-database says otherwise: never serve's database by default.
const demoDatabase = "hookline_demo"

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", `Runs hookline end to end on the embedded broker: starts the broker, the
pipeline and local receivers (healthy, flaky and one dead), sends --events
through the ingest API, shows progress and prints a summary. The receivers
verify every signature. Retry tiers are scaled (--tier-scale) so that the
whole schedule fits in well under a minute. With --clickhouse, the attempt
rows go to database `+demoDatabase+` (--clickhouse-database to change it), under
a tenant of the run's own, and the summary counts only that run's rows.`)
	d, cleanup, err := localDefaults("demo")
	if err != nil {
		return err
	}
	defer cleanup()
	d.TierScale = demoTierScale
	// The demo's receivers listen on 127.0.0.1, which the SSRF guard
	// refuses by default.
	d.AllowPrivateDestinations = true
	d.LogLevel = "error" // the progress lines and the summary say what matters
	d.BreakerCooldown = time.Second
	d.ClickHouseDatabase = demoDatabase
	d.RegisterFlags(fs)
	events := fs.Int("events", 2000, "number of events to send")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up waiting for every event to settle after this long")
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	if *events < 1 {
		return fmt.Errorf("--events: must be at least 1, got %d", *events)
	}
	progress := os.Stderr
	fmt.Fprintf(progress, "demo: retry tiers scaled x%g for the demo:", cfg.TierScale)
	for _, t := range cfg.Tiers {
		fmt.Fprintf(progress, " %v->%v", t, time.Duration(float64(t)*cfg.TierScale).Round(time.Millisecond))
	}
	fmt.Fprintln(progress)
	if cfg.AllowPrivateDestinations {
		fmt.Fprintln(progress, "demo: allow_private_destinations is on so that deliveries reach the local receivers on 127.0.0.1; never in production")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc, svcErr, err := startLocal(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "demo: pipeline ready (ingest http://%s, metrics http://%s/metrics)\n", svc.IngestAddr(), svc.MetricsAddr())

	run := &demoRun{id: newRunID(), api: &apiClient{base: "http://" + svc.IngestAddr()}, sentAt: make(map[string]time.Time), acked: make(map[string]int),
		firstTry: time.Duration(float64(cfg.TierDelays()[0]) * (1 - cfg.Jitter))}
	if cfg.ClickHouse != "" {
		fmt.Fprintf(progress, "demo: run %s: attempt rows go to ClickHouse %s, database %s, tenant %s\n", run.id, cfg.ClickHouse, cfg.ClickHouseDatabase, run.tenant())
	}
	if err := run.startReceivers(); err != nil {
		return err
	}
	defer run.close()
	if err := run.createEndpoints(ctx); err != nil {
		return err
	}
	tally := newAttemptTally()
	go tally.follow(ctx, svc.Env(), svc.Env().Topics.Attempts)

	start := time.Now()
	if err := run.send(ctx, *events); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		delivered, dead, pending := run.settled(tally)
		fmt.Fprintf(progress, "demo: %5.1fs sent %d, delivered %d, dead-lettered %d, waiting %d (retry tiers: %s)\n",
			time.Since(start).Seconds(), run.sent.Load(), delivered, dead, pending, tally.tierString())
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-svcErr:
			return fmt.Errorf("pipeline stopped: %w", err)
		case <-tick.C:
		}
	}
	sum := run.summary(tally, start)
	var report string
	if cfg.ClickHouse != "" {
		if sum.ClickHouse, report, err = clickhouseReport(ctx, cfg, run.tenant(), tally); err != nil {
			return err
		}
	}
	cancel()
	if err := <-svcErr; err != nil {
		return fmt.Errorf("pipeline shutdown: %w", err)
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(sum); err != nil {
			return err
		}
		fmt.Fprint(os.Stderr, report)
	} else {
		printSummary(os.Stdout, sum)
		fmt.Print(report)
	}
	if sum.Lost > 0 || sum.SignatureFailures > 0 {
		return fmt.Errorf("%d events lost, %d signature failures", sum.Lost, sum.SignatureFailures)
	}
	return nil
}

type demoRun struct {
	// id makes this run's endpoint and event ids its own: the demo's broker
	// starts empty, so attempt ids (topic/partition/offset/endpoint) repeat
	// from run to run unless the endpoint ids differ, and ClickHouse would
	// collapse one run's rows into another's.
	id        string
	api       *apiClient
	receivers []*receiver
	sent      atomic.Int64
	sigFails  atomic.Int64

	mu        sync.Mutex
	sentAt    map[string]time.Time
	acked     map[string]int // event id -> 2xx answers given
	latencies []time.Duration
	// firstTry is the latency below which a delivery cannot have been
	// retried (the first tier's shortest wait); firstPassAcks/lastFirstPass
	// measure the pipeline's rate on those.
	firstTry      time.Duration
	firstPassAcks int
	lastFirstPass time.Time
}

// newRunID returns 8 random hex digits.
func newRunID() string {
	return fmt.Sprintf("%08x", rand.Uint32())
}

// tenant is the run's tenant: its endpoints', so its attempt rows'.
func (d *demoRun) tenant() string { return "demo-" + d.id }

func (d *demoRun) createEndpoints(ctx context.Context) error {
	for _, rc := range d.receivers {
		body, _ := json.Marshal(map[string]any{"id": rc.id, "url": rc.url, "secret": rc.secret, "timeout_ms": 2000, "tenant": d.tenant()})
		if err := d.api.post(ctx, "/v1/endpoints", body, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("create endpoint %s: %w", rc.id, err)
		}
	}
	return nil
}

// send posts n events through the ingest API, spread over the receivers and
// over 50 ordering keys each, with 8 clients at once.
func (d *demoRun) send(ctx context.Context, n int) error {
	jobs := make(chan int)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				rc := d.receivers[i%len(d.receivers)]
				id := fmt.Sprintf("demo-%s-evt-%06d", d.id, i)
				body, _ := json.Marshal(map[string]any{
					"id": id, "type": "order.created", "endpoint_id": rc.id,
					"ordering_key": fmt.Sprintf("%s/customer-%d", rc.id, i%50),
					"payload":      map[string]any{"order": i, "amount_cents": 100 + i%900},
				})
				d.mu.Lock()
				d.sentAt[id] = time.Now()
				d.mu.Unlock()
				var resp struct {
					Duplicate bool `json:"duplicate"`
				}
				if err := d.api.post(ctx, "/v1/events", body, http.StatusAccepted, &resp); err != nil {
					errc <- err
					return
				}
				d.sent.Add(1)
			}
		}()
	}
	var err error
loop:
	for i := range n {
		select {
		case jobs <- i:
		case err = <-errc:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("send events: %w", err)
	}
	return nil
}
