package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
)

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
