package app

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// Observe counts the attempts a stage returns, and hands the records on to
// be produced under the transaction's context, not the one the attempt
// rode in.
func TestObserveCountsAttemptsAndClearsTheirContext(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), 10)
	attempts := []processors.Attempt{
		{EndpointID: "a", Outcome: processors.OutcomeDelivered, StatusCode: 200},
		{EndpointID: "b", Outcome: processors.OutcomeRetry, StatusCode: 503, ErrorClass: processors.ClassHTTP5xx},
	}
	stage := pipeline.StageFunc(func(context.Context, *kgo.Record, []*kgo.Record) ([]*kgo.Record, error) {
		var out []*kgo.Record
		for _, a := range attempts {
			r, err := a.Record("attempts")
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	})
	out, err := Observe(stage, "events", "dlq", "attempts", m, slog.New(slog.DiscardHandler)).Process(context.Background(), &kgo.Record{}, nil)
	if err != nil || len(out) != 2 {
		t.Fatalf("Process = %d records, %v", len(out), err)
	}
	for _, r := range out {
		if r.Context != nil {
			t.Errorf("attempt record of %s leaves with a Context; the Produce context would not apply to it", r.Key)
		}
	}
	for _, tc := range []struct{ outcome, class string }{{"delivered", ""}, {"retry", "http_5xx"}} {
		var got dto.Metric
		if err := m.Deliveries.WithLabelValues("events", tc.outcome, tc.class).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got.GetCounter().GetValue() != 1 {
			t.Errorf("deliveries{outcome=%s} = %v, want 1", tc.outcome, got.GetCounter().GetValue())
		}
	}
}
