package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/signature"
)

// demoTierScale makes the 30s/2m/10m/1h schedule take about 17 s in all.
const demoTierScale = 0.004

// demoDatabase is where `demo --clickhouse` writes unless
// --clickhouse-database says otherwise: never serve's database by default.
const demoDatabase = "hookline_demo"

// DemoSummary is what `hookline demo --json` prints.
type DemoSummary struct {
	Sent              int            `json:"sent"`
	Delivered         int            `json:"delivered"`
	Retried           map[string]int `json:"retried"`
	DeadLettered      int            `json:"dead_lettered"`
	Duplicates        int            `json:"duplicates"`
	Lost              int            `json:"lost"`
	SignatureFailures int            `json:"signature_failures"`
	LatencyMSP50      float64        `json:"latency_ms_p50"`
	LatencyMSP99      float64        `json:"latency_ms_p99"`
	DeliveriesPerSec  float64        `json:"deliveries_per_second"`
	// ClickHouse is set with --clickhouse: this run's rows, nobody else's.
	ClickHouse *DemoClickHouse `json:"clickhouse,omitempty"`
}

// DemoClickHouse is where a demo run's attempt rows landed and how many.
type DemoClickHouse struct {
	Addr     string `json:"addr"`
	Database string `json:"database"`
	// Tenant is the run's tenant: every row of the run, and only those, has it.
	Tenant string `json:"tenant"`
	// RowsByOutcome are the run's attempt rows (deduplicated); they equal
	// the run's attempt records in Kafka per outcome, or the demo fails.
	RowsByOutcome map[string]uint64 `json:"rows_by_outcome"`
}

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

	run := &demoRun{id: newRunID(), api: "http://" + svc.IngestAddr(), sentAt: make(map[string]time.Time), acked: make(map[string]int),
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

// receiver is one local webhook endpoint of the demo.
type receiver struct {
	id     string
	kind   string // healthy, flaky, dead
	secret string
	url    string
	srv    *http.Server
}

type demoRun struct {
	// id makes this run's endpoint and event ids its own: the demo's broker
	// starts empty, so attempt ids (topic/partition/offset/endpoint) repeat
	// from run to run unless the endpoint ids differ, and ClickHouse would
	// collapse one run's rows into another's.
	id        string
	api       string
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

func (d *demoRun) startReceivers() error {
	kinds := []string{"healthy", "healthy", "healthy", "flaky", "flaky", "dead"}
	for i, kind := range kinds {
		secret, err := signature.NewSecret()
		if err != nil {
			return err
		}
		rc := &receiver{id: fmt.Sprintf("demo-%s-%s-%d", d.id, kind, i), kind: kind, secret: secret}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("start demo receiver: %w", err)
		}
		rc.url = "http://" + ln.Addr().String() + "/webhook"
		if kind == "dead" {
			_ = ln.Close() // nothing listens: connection refused, every time
		} else {
			rc.srv = &http.Server{Handler: d.handler(rc), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = rc.srv.Serve(ln) }() // ErrServerClosed at the end
		}
		d.receivers = append(d.receivers, rc)
	}
	return nil
}

func (d *demoRun) close() {
	for _, rc := range d.receivers {
		if rc.srv != nil {
			_ = rc.srv.Close()
		}
	}
}

// handler verifies the signature of every request, like a careful receiver.
func (d *demoRun) handler(rc *receiver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := signature.Verify([]string{rc.secret}, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			d.sigFails.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if rc.kind == "flaky" && rand.Float64() < 0.4 {
			status := http.StatusServiceUnavailable
			if rand.IntN(2) == 0 {
				status = http.StatusInternalServerError
			}
			http.Error(w, "flaky receiver says no", status)
			return
		}
		id := r.Header.Get("webhook-id")
		now := time.Now()
		d.mu.Lock()
		d.acked[id]++
		if d.acked[id] == 1 {
			lat := now.Sub(d.sentAt[id])
			d.latencies = append(d.latencies, lat)
			if lat < d.firstTry {
				d.firstPassAcks++
				d.lastFirstPass = now
			}
		}
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

func (d *demoRun) createEndpoints(ctx context.Context) error {
	for _, rc := range d.receivers {
		body, _ := json.Marshal(map[string]any{"id": rc.id, "url": rc.url, "secret": rc.secret, "timeout_ms": 2000, "tenant": d.tenant()})
		if err := d.post(ctx, "/v1/endpoints", body, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("create endpoint %s: %w", rc.id, err)
		}
	}
	return nil
}

func (d *demoRun) post(ctx context.Context, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.api+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
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
				if err := d.post(ctx, "/v1/events", body, http.StatusAccepted, &resp); err != nil {
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

// settled counts events delivered (a receiver answered 2xx), dead-lettered
// (the pipeline committed a DLQ hand-off) and neither yet.
func (d *demoRun) settled(t *attemptTally) (delivered, dead, pending int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range d.sentAt {
		switch {
		case d.acked[id] > 0:
			delivered++
		case t.dead[id]:
			dead++
		default:
			pending++
		}
	}
	return delivered, dead, pending
}

func (d *demoRun) summary(t *attemptTally, start time.Time) DemoSummary {
	delivered, dead, pending := d.settled(t)
	d.mu.Lock()
	defer d.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	s := DemoSummary{
		Sent:              int(d.sent.Load()),
		Delivered:         delivered,
		Retried:           make(map[string]int),
		DeadLettered:      dead,
		Lost:              pending,
		SignatureFailures: int(d.sigFails.Load()),
	}
	for tier, n := range t.retried {
		s.Retried[tier] = n
	}
	for _, n := range d.acked {
		if n > 1 {
			s.Duplicates += n - 1
		}
	}
	lat := slices.Clone(d.latencies)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s.LatencyMSP50 = percentileMS(lat, 0.50)
	s.LatencyMSP99 = percentileMS(lat, 0.99)
	if secs := d.lastFirstPass.Sub(start).Seconds(); secs > 0 {
		s.DeliveriesPerSec = float64(d.firstPassAcks) / secs
	}
	return s
}

func percentileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// attemptTally follows the attempts topic (committed records only) to learn
// which pairs moved to which tier and which reached the DLQ.
type attemptTally struct {
	mu       sync.Mutex
	retried  map[string]int
	dead     map[string]bool
	outcomes map[string]uint64 // attempt records per outcome
}

func newAttemptTally() *attemptTally {
	return &attemptTally{retried: make(map[string]int), dead: make(map[string]bool), outcomes: make(map[string]uint64)}
}

func (t *attemptTally) follow(ctx context.Context, env *app.Env, topic string) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil))}, env.KafkaOpts...)...)
	if err != nil {
		slog.Error("follow attempts", "err", err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			a, err := processors.DecodeAttempt(r.Value)
			if err != nil {
				return
			}
			t.mu.Lock()
			t.outcomes[string(a.Outcome)]++
			switch {
			case a.Outcome == processors.OutcomeRetry && a.NextTier != "":
				t.retried[a.NextTier]++
			case a.Outcome == processors.OutcomeDeadLettered:
				t.dead[a.EventID] = true
			}
			t.mu.Unlock()
		})
	}
}

func (t *attemptTally) tierString() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.retried))
	for k := range t.retried {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, t.retried[k])
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, " ")
}

// clickhouseReport waits until ClickHouse holds as many attempt rows of the
// run's tenant per outcome as the attempts topic has records, then runs the
// core queries on the run's rows.
func clickhouseReport(ctx context.Context, cfg config.Config, tenant string, t *attemptTally) (*DemoClickHouse, string, error) {
	conn, err := analytics.Open(ctx, analytics.ConnOptionsFrom(cfg))
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse %s: %w", cfg.ClickHouse, err)
	}
	defer func() { _ = conn.Close() }()
	t.mu.Lock()
	want := maps.Clone(t.outcomes)
	t.mu.Unlock()
	var got map[string]uint64
	deadline := time.Now().Add(time.Minute)
	for {
		got, err = analytics.CountTenantByOutcome(ctx, conn, cfg.ClickHouseDatabase, tenant)
		if err == nil && maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("clickhouse attempt rows of tenant %s per outcome %v do not match the attempts topic %v (err %v)", tenant, got, want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	summary, err := analytics.TenantSummary(ctx, conn, cfg.ClickHouseDatabase, tenant)
	if err != nil {
		return nil, "", err
	}
	ch := &DemoClickHouse{Addr: cfg.ClickHouse, Database: cfg.ClickHouseDatabase, Tenant: tenant, RowsByOutcome: got}
	return ch, fmt.Sprintf("\nClickHouse (%s, database %s, this run's tenant %s): attempt rows per outcome match the attempts topic: %v\n\n%s", cfg.ClickHouse, cfg.ClickHouseDatabase, tenant, got, summary), nil
}

func printSummary(w io.Writer, s DemoSummary) {
	fmt.Fprintf(w, "\nhookline demo summary\n")
	fmt.Fprintf(w, "  sent                 %d\n", s.Sent)
	fmt.Fprintf(w, "  delivered            %d\n", s.Delivered)
	keys := make([]string, 0, len(s.Retried))
	for k := range s.Retried {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  retried into %-8s %d\n", k, s.Retried[k])
	}
	fmt.Fprintf(w, "  dead-lettered        %d\n", s.DeadLettered)
	fmt.Fprintf(w, "  duplicate deliveries %d\n", s.Duplicates)
	fmt.Fprintf(w, "  lost                 %d\n", s.Lost)
	fmt.Fprintf(w, "  signature failures   %d\n", s.SignatureFailures)
	fmt.Fprintf(w, "  latency p50 / p99    %.1f ms / %.1f ms (accepted by ingest -> first 2xx)\n", s.LatencyMSP50, s.LatencyMSP99)
	fmt.Fprintf(w, "  deliveries/second    %.0f (first attempts, while events arrive through the ingest API)\n", s.DeliveriesPerSec)
}
