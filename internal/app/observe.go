package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// Observe wraps a stage so that every stage gets the same metrics and
// logging, added once here rather than inside each stage.
func Observe(s pipeline.Stage, name, dlqTopic, attemptsTopic string, m *Metrics, log *slog.Logger) pipeline.Stage {
	return pipeline.StageFunc(func(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error) {
		start := time.Now()
		if due, ok := processors.DueOf(r); ok {
			m.TierLateness.WithLabelValues(name).Observe(max(start.Sub(due).Seconds(), 0))
		}
		out, err := s.Process(ctx, r, handedOff)
		d, deferred := pipeline.DeferredOf(err)
		switch {
		case deferred:
			_, out = d.Deferred()
		case err != nil:
			return nil, err
		}
		m.StageSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		m.StageRecords.WithLabelValues(name).Inc()
		for _, o := range out {
			switch o.Topic {
			case dlqTopic:
				m.DLQWritten.WithLabelValues(name).Inc()
			case attemptsTopic:
				a, err := processors.AttemptOf(o)
				// Produced under the transaction's context, as every
				// other record, not under the one that carried a.
				o.Context = nil
				if err != nil {
					log.Error("stage produced an undecodable attempt record", "err", err)
					continue
				}
				m.Deliveries.WithLabelValues(name, string(a.Outcome), string(a.ErrorClass)).Inc()
				m.EndpointDeliveries.WithLabelValues(m.endpoints.label(a.EndpointID), StatusLabel(a.StatusCode)).Inc()
				if !a.Skipped {
					m.DeliveryLatency.WithLabelValues(name).Observe(a.LatencyMS / 1000)
				}
			}
		}
		if deferred {
			return nil, err
		}
		return out, nil
	})
}
