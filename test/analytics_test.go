package test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
)

// After a run with healthy, flaky and dead endpoints, ClickHouse holds one
// row per attempt: its counts per outcome equal the attempts topic's.
func TestClickHouseRowsMatchThePipelineAttempts(t *testing.T) {
	cfg := testConfig(t)
	cfg.ClickHouse = testenv.ClickHouse(t)
	cfg.ClickHouseDatabase = fmt.Sprintf("e2e_%d", rand.IntN(1e9))
	h := start(t, cfg)
	conn, err := analytics.Open(t.Context(), analytics.ConnOptionsFrom(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.ClickHouseDatabase)
	})

	h.addEndpoint("healthy", newReceiver(t, nil), time.Second)
	h.addEndpoint("flaky", newReceiver(t, func(string, int) int {
		if rand.Float64() < 0.5 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}), time.Second)
	h.addEndpoint("dead", newReceiver(t, func(string, int) int { return http.StatusBadGateway }), time.Second)
	const n = 300
	eps := []string{"healthy", "flaky", "dead"}
	for i := range n {
		h.send(fmt.Sprintf("evt-%d", i), eps[i%3], fmt.Sprint("k", i%7), map[string]int{"n": i})
	}
	// Every event settles: one attempt says delivered or dead-lettered. A
	// pause in the attempts topic is no sign of that: the last tier waits
	// 7.2 s at test scale, and a flaky event can still be on its way there.
	want := make(map[string]uint64)
	waitFor(t, 2*time.Minute, "every event to be delivered or dead-lettered", func() bool {
		atts := h.attempts(1<<30, time.Second)
		settled := make(map[string]bool)
		clear(want)
		for _, a := range atts {
			want[string(a.Outcome)]++
			if a.Outcome == processors.OutcomeDelivered || a.Outcome == processors.OutcomeDeadLettered {
				settled[a.EventID] = true
			}
		}
		return len(settled) == n
	})
	var got map[string]uint64
	waitFor(t, 3*time.Minute, "ClickHouse to hold every attempt", func() bool {
		got, err = analytics.CountByOutcome(t.Context(), conn, cfg.ClickHouseDatabase)
		return err == nil && maps.Equal(got, want)
	})
	// The pipeline's own counters say the same.
	counted := make(map[string]uint64)
	mfs, err := h.env.Prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hookline_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					counted[l.GetValue()] += uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	if !maps.Equal(counted, got) {
		t.Errorf("hookline_deliveries_total per outcome %v, ClickHouse %v", counted, got)
	}
	t.Logf("attempts per outcome: topic %v, ClickHouse %v, pipeline counters %v", want, got, counted)
}
