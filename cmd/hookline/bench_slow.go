package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// SlowResult is what `hookline bench --scenario slow --json` prints.
type SlowResult struct {
	Scenario         string `json:"scenario"`
	Endpoints        int    `json:"endpoints"`
	SlowEndpoints    int    `json:"slow_endpoints"`
	SlowTimeoutMS    int64  `json:"slow_timeout_ms"`
	HealthyEvents    int    `json:"healthy_events"`
	SlowEvents       int    `json:"slow_events"`
	Keys             int    `json:"keys"`
	Partitions       int    `json:"partitions"`
	Concurrency      int    `json:"concurrency"`
	BreakerThreshold int    `json:"breaker_threshold"`
	// WithoutSlowPerSecond is the healthy endpoints' deliveries/s when they
	// get every event; WithSlowPerSecond is theirs when the slow ones get
	// their share as well.
	WithoutSlowPerSecond float64 `json:"healthy_deliveries_per_second_without_slow"`
	WithSlowPerSecond    float64 `json:"healthy_deliveries_per_second_with_slow"`
	Ratio                float64 `json:"ratio"`
	// SlowRequests is how many requests reached the hanging endpoints while
	// the healthy events were measured (the circuit breaker skips some).
	SlowRequests int64  `json:"slow_requests"`
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	Broker       string `json:"broker"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
}

func (r SlowResult) table(w io.Writer) {
	fmt.Fprintf(w, "%d endpoints, %d hang for %d ms; %d healthy events (+%d to the hanging ones), %d keys, %d partitions x %d\n",
		r.Endpoints, r.SlowEndpoints, r.SlowTimeoutMS, r.HealthyEvents, r.SlowEvents, r.Keys, r.Partitions, r.Concurrency)
	fmt.Fprintf(w, "healthy deliveries/s without the slow ones %8.0f\nhealthy deliveries/s with the slow ones    %8.0f (%d requests hung)\nratio                                      %8.2f\npeak RSS                                   %8s\n",
		r.WithoutSlowPerSecond, r.WithSlowPerSecond, r.SlowRequests, r.Ratio, mib(r.PeakRSSBytes))
}

// benchSlow delivers the healthy endpoints' events twice in one pipeline,
// after an untimed warm-up: first alone, then spread over every endpoint,
// the hanging ones included, and compares the healthy endpoints'
// deliveries per second.
func benchSlow(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error) {
	slow := int(math.Round(float64(o.endpoints) * o.slowShare))
	if o.endpoints < 2 || slow < 1 || slow >= o.endpoints {
		return nil, fmt.Errorf("--endpoints %d with --slow-share %g: want at least one slow and one healthy endpoint", o.endpoints, o.slowShare)
	}
	if o.slowTimeout < time.Millisecond || o.slowTimeout > time.Duration(endpoints.MaxTimeoutMS)*time.Millisecond {
		return nil, errors.New("--slow-timeout: want 1ms to 5m")
	}
	freshTopicPrefix(&cfg, o.scenario)
	var hung atomic.Int64
	bp, err := startBenchPipeline(ctx, cfg, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			hung.Add(1)
			hangUntilClientGivesUp(r)
			return false
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	if err != nil {
		return nil, err
	}
	defer bp.close()
	env := bp.svc.Env()
	secret, _ := endpoints.GenerateSecret()
	ids := make([]string, o.endpoints)
	for i := range ids {
		ep := endpoints.Endpoint{ID: fmt.Sprintf("ok-%d", i), Secrets: []string{secret}, Enabled: true}
		if i < slow {
			ep.ID, ep.TimeoutMS = fmt.Sprintf("slow-%d", i), int(o.slowTimeout/time.Millisecond)
		}
		ep.URL = bp.rc.URL + "/" + strings.SplitN(ep.ID, "-", 2)[0] + "/" + ep.ID
		if err := env.Registry.Put(ctx, ep); err != nil {
			return nil, err
		}
		ids[i] = ep.ID
	}
	healthy := o.endpoints - slow
	res := SlowResult{Scenario: o.scenario, Endpoints: o.endpoints, SlowEndpoints: slow, SlowTimeoutMS: o.slowTimeout.Milliseconds(),
		HealthyEvents: o.events, Keys: o.keys, Partitions: cfg.Partitions, Concurrency: cfg.Concurrency,
		BreakerThreshold: cfg.BreakerThreshold, Broker: brokerName(cfg), GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// phase delivers n events with ids prefix-i to endpoint(i) and times
	// them until the healthy endpoints have answered want more.
	phase := func(prefix string, n, want int, endpoint func(int) string) (float64, error) {
		recs, err := benchRecords(env.Topics.Events, prefix, n, o.keys, endpoint)
		if err != nil {
			return 0, err
		}
		target := bp.rc.Delivered.Load() + int64(want)
		start := time.Now()
		if err := env.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return 0, fmt.Errorf("produce bench events: %w", err)
		}
		if err := bp.waitDelivered(ctx, target); err != nil {
			return 0, err
		}
		return float64(want) / time.Since(start).Seconds(), nil
	}
	fmt.Fprintf(o.progress, "bench slow: %d healthy events over %d healthy endpoints, then again with %d of %d endpoints hanging for %v\n",
		o.events, healthy, slow, o.endpoints, o.slowTimeout)
	// A pass that is not timed first, so that the timed ones both find the
	// healthy endpoints' connections open and the broker warm.
	warm := max(o.events/5, healthy)
	if _, err := phase("warm", warm, warm, func(i int) string { return ids[slow+i%healthy] }); err != nil {
		return nil, err
	}
	if res.WithoutSlowPerSecond, err = phase("alone", o.events, o.events, func(i int) string { return ids[slow+i%healthy] }); err != nil {
		return nil, err
	}
	// Every endpoint in turn, until the healthy ones have o.events again
	// and the slow ones their share of the stream.
	var mixed []string
	for i := 0; len(mixed)-res.SlowEvents < o.events; i++ {
		mixed = append(mixed, ids[i%o.endpoints])
		if i%o.endpoints < slow {
			res.SlowEvents++
		}
	}
	if res.WithSlowPerSecond, err = phase("mixed", len(mixed), o.events, func(i int) string { return mixed[i] }); err != nil {
		return nil, err
	}
	res.SlowRequests = hung.Load()
	res.Ratio = res.WithSlowPerSecond / res.WithoutSlowPerSecond
	res.PeakRSSBytes = peakRSS()
	if err := bp.stop(); err != nil {
		return nil, err
	}
	return res, nil
}
