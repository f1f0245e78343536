package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/topics"
)

// TiersResult is what `hookline bench --scenario tiers --json` prints.
type TiersResult struct {
	Scenario    string  `json:"scenario"`
	Events      int     `json:"events"`
	RetryAfter  int     `json:"retry_after_events"`
	Partitions  int     `json:"partitions"`
	TierScale   float64 `json:"tier_scale"`
	Broker      string  `json:"broker"`
	PeakWaiting int     `json:"peak_records_waiting_in_tiers"`
	// Lateness of the tier attempts of the events not behind a Retry-After:
	// started_at minus the tier record's due time.
	Attempts      int     `json:"tier_attempts_measured"`
	LatenessP50MS float64 `json:"lateness_ms_p50"`
	LatenessP99MS float64 `json:"lateness_ms_p99"`
	LatenessMaxMS float64 `json:"lateness_ms_max"`
	Early         int     `json:"early_attempts"`
	// LatenessCDF is the same lateness at quantiles 0, 0.01, ..., 0.99,
	// 0.999, 1: the points of its CDF.
	LatenessCDF []Quantile `json:"lateness_ms_quantiles"`
	// ByTier is p50/p99/max lateness in ms per tier.
	ByTier       map[string][3]float64 `json:"lateness_ms_by_tier"`
	PeakRSSBytes int64                 `json:"peak_rss_bytes"`
	Seconds      float64               `json:"seconds"`
	GOMAXPROCS   int                   `json:"gomaxprocs"`
}

// tiersFailures is how many attempts of an ordinary event fail: it waits in
// the first tiersFailures tiers and is delivered from the last of them.
const tiersFailures = 3

// benchTiers fills the retry tiers: events go out at rate per second to an
// endpoint that fails each one's first tiersFailures attempts, and a share
// of them to one that answers 429 with a long Retry-After. It measures how
// late the ordinary events' tier attempts are against their due times while
// the others wait, and the process's peak RSS.
func benchTiersScenario(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error) {
	events, share, rate, retryAfter := o.events, o.share, o.rate, o.retryAfter
	if rate < 1 || !(share >= 0 && share < 1) {
		return nil, errors.New("--rate must be at least 1, --retry-after-share in [0,1)")
	}
	freshTopicPrefix(&cfg, "tiers")
	var (
		mu       sync.Mutex
		attempts = make(map[string]int)
		done     int
	)
	bp, err := startBenchPipeline(ctx, cfg, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/limited") {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			return false
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		attempts[id]++
		n := attempts[id]
		if n == tiersFailures+1 {
			done++
		}
		mu.Unlock()
		if n <= tiersFailures {
			w.WriteHeader(http.StatusServiceUnavailable)
			return false
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	if err != nil {
		return nil, err
	}
	defer bp.close()
	base := bp.rc.URL
	env := bp.svc.Env()
	secret, _ := endpoints.GenerateSecret()
	for _, id := range []string{"flaky", "limited"} {
		if err := env.Registry.Put(ctx, endpoints.Endpoint{ID: id, URL: base + "/" + id, Secrets: []string{secret}, Enabled: true}); err != nil {
			return nil, err
		}
	}

	limitedEvery := 0
	if share > 0 {
		limitedEvery = int(1 / share)
	}
	ordinary := 0
	recs := make([]*kgo.Record, events)
	for i := range recs {
		ep := "flaky"
		if limitedEvery > 0 && i%limitedEvery == 0 {
			ep = "limited"
		} else {
			ordinary++
		}
		recs[i], err = envelope.Record(env.Topics.Events, envelope.Event{
			ID: fmt.Sprintf("tiers-%d", i), Type: "order.created", EndpointID: ep,
			OrderingKey: fmt.Sprintf("key-%d", i), Payload: benchPayload,
		})
		if err != nil {
			return nil, err
		}
	}
	broker := brokerName(cfg)
	fmt.Fprintf(o.progress, "bench tiers: %d events at %d/s (%d behind Retry-After: %s), tiers %v, %d partitions, broker %s\n",
		events, rate, events-ordinary, retryAfter, cfg.TierDelays(), cfg.Partitions, broker)

	start := time.Now()
	// Produce at rate, in batches every 100ms, so the tiers fill as a
	// steady stream would fill them.
	batch := max(rate/10, 1)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(recs); i += batch {
		if err := env.Client.ProduceSync(ctx, recs[i:min(i+batch, len(recs))]...).FirstErr(); err != nil {
			return nil, fmt.Errorf("produce bench events: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-bp.svcErr:
			return nil, fmt.Errorf("pipeline stopped: %w", err)
		case <-tick.C:
		}
	}
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for {
		mu.Lock()
		n := done
		mu.Unlock()
		if n >= ordinary {
			break
		}
		select {
		case <-progress.C:
			fmt.Fprintf(o.progress, "bench tiers: %d of %d delivered after %v\n", n, ordinary, time.Since(start).Round(time.Second))
		default:
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-bp.svcErr:
			return nil, fmt.Errorf("pipeline stopped: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	res := TiersResult{
		Scenario: "tiers", Events: events, RetryAfter: events - ordinary, Partitions: cfg.Partitions, TierScale: cfg.TierScale,
		Broker: broker, PeakRSSBytes: peakRSS(), Seconds: elapsed.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if err := measureTiers(ctx, env.Brokers, env.Topics.Attempts, tierTopics(env.Topics.Tiers), ordinary, &res); err != nil {
		return nil, err
	}
	if err := bp.stop(); err != nil {
		return nil, err
	}

	return res, nil
}

func (res TiersResult) table(w io.Writer) {
	fmt.Fprintf(w, "events                 %d (%d behind a Retry-After)\npeak waiting in tiers  %d\ntier attempts measured %d (the others')\nlateness               p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d early\npeak RSS               %s\n",
		res.Events, res.RetryAfter, res.PeakWaiting, res.Attempts, res.LatenessP50MS, res.LatenessP99MS, res.LatenessMaxMS, res.Early, mib(res.PeakRSSBytes))
	tiers := slices.Sorted(maps.Keys(res.ByTier))
	for _, tier := range tiers {
		q := res.ByTier[tier]
		fmt.Fprintf(w, "  %-20s p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", tier, q[0], q[1], q[2])
	}
}

func tierTopics(ts []topics.Tier) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Topic
	}
	return out
}

// measureTiers reads every tier record and attempt record and fills in the
// lateness of the ordinary events' tier attempts and the peak number of
// records waiting in the tiers at once.
func measureTiers(ctx context.Context, brokers []string, attemptsTopic string, tiers []string, ordinary int, res *TiersResult) error {
	type waiting struct{ entered, started time.Time }
	due := make(map[string]time.Time)
	intervals := make(map[string]*waiting)
	tierRecs, err := readAll(ctx, brokers, tiers)
	if err != nil {
		return err
	}
	for _, r := range tierRecs {
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			return err
		}
		src := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
		due[src] = st.Due
		intervals[src+"/"+st.EndpointID] = &waiting{entered: st.Entered}
	}
	attRecs, err := readAll(ctx, brokers, []string{attemptsTopic})
	if err != nil {
		return err
	}
	var lateness []time.Duration
	byTier := make(map[string][]time.Duration)
	for _, r := range attRecs {
		a, err := processors.DecodeAttempt(r.Value)
		if err != nil {
			return err
		}
		if w := intervals[a.AttemptID]; w != nil {
			w.started = a.StartedAt.Truncate(time.Millisecond) // entered is in ms too
		}
		if a.Tier == processors.StageEvents || a.EndpointID != "flaky" {
			continue
		}
		d, ok := due[strings.TrimSuffix(a.AttemptID, "/"+a.EndpointID)]
		if !ok {
			continue
		}
		late := a.StartedAt.Sub(d)
		if a.StartedAt.Before(d.Truncate(time.Millisecond)) {
			res.Early++
		}
		lateness = append(lateness, late)
		byTier[a.Tier] = append(byTier[a.Tier], late)
	}
	if want := ordinary * tiersFailures; len(lateness) < want {
		return fmt.Errorf("measured %d tier attempts of ordinary events, want %d (read %d tier records and %d attempt records)", len(lateness), want, len(tierRecs), len(attRecs))
	}
	res.Attempts = len(lateness)
	res.LatenessP50MS, res.LatenessP99MS, res.LatenessMaxMS = quantilesMS(lateness)
	res.LatenessCDF = distributionMS(lateness)
	res.ByTier = make(map[string][3]float64, len(byTier))
	for tier, ds := range byTier {
		p50, p99, mx := quantilesMS(ds)
		res.ByTier[tier] = [3]float64{p50, p99, mx}
	}

	// Peak overlap of [entered, started) (still waiting at the end: open).
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, w := range intervals {
		edges = append(edges, edge{w.entered, 1})
		if !w.started.IsZero() {
			edges = append(edges, edge{w.started, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d
	})
	n := 0
	for _, e := range edges {
		n += e.d
		res.PeakWaiting = max(res.PeakWaiting, n)
	}
	return nil
}

// readAll reads every committed record of topics up to their last stable
// offsets when it is called, keeping control records so that a partition
// whose last record is a transaction marker still reaches its end.
func readAll(ctx context.Context, brokers []string, topics []string) ([]*kgo.Record, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(kadm.WithAuthorizedOps(ctx), topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %v: %w", topics, err)
	}
	stop := make(map[string]map[int32]int64)
	read := make(map[string]map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset <= 0 {
			return
		}
		if stop[o.Topic] == nil {
			stop[o.Topic], read[o.Topic] = make(map[int32]int64), make(map[int32]kgo.Offset)
		}
		stop[o.Topic][o.Partition], read[o.Topic][o.Partition] = o.Offset, kgo.NewOffset().AtStart()
	})
	if len(read) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(read),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(stop) > 0 {
		// A minute without a record means the reader is stuck: say where.
		pollCtx, cancel := context.WithTimeout(ctx, time.Minute)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, fmt.Errorf("read %s[%d]: %w", t, p, err))
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		if fs.NumRecords() == 0 {
			return nil, fmt.Errorf("read %v: no record for a minute with %d topics short of their end offsets (%d records read)", topics, len(stop), len(out))
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := stop[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end {
				delete(stop[r.Topic], r.Partition)
				if len(stop[r.Topic]) == 0 {
					delete(stop, r.Topic)
				}
			}
		})
	}
	return out, nil
}
