package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/processors"
)

// Metrics are the pipeline's Prometheus metrics.
type Metrics struct {
	Deliveries      *prometheus.CounterVec
	DeliveryLatency *prometheus.HistogramVec
	StageRecords    *prometheus.CounterVec
	StageSeconds    *prometheus.HistogramVec
	DLQWritten      *prometheus.CounterVec
	ConsumerLag     *prometheus.GaugeVec
	TierWaiting     *prometheus.GaugeVec
	DLQDepth        prometheus.Gauge
}

// NewMetrics registers the pipeline metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		Deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_deliveries_total",
			Help: "Delivery attempts by the stage that made them, their outcome and error class.",
		}, []string{"tier", "outcome", "error_class"}),
		DeliveryLatency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookline_delivery_latency_seconds",
			Help:    "HTTP delivery latency, per stage.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tier"}),
		StageRecords: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_stage_records_total",
			Help: "Deliveries processed by each stage: one per record and endpoint (a tenant event is one per subscriber).",
		}, []string{"stage"}),
		StageSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookline_stage_process_seconds",
			Help:    "Time to process one delivery (a record, for one endpoint), per stage.",
			Buckets: prometheus.DefBuckets,
		}, []string{"stage"}),
		DLQWritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_dlq_records_written_total",
			Help: "Records this process wrote to the dead-letter topic, by the stage that wrote them.",
		}, []string{"stage"}),
		ConsumerLag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_consumer_lag_records",
			Help: "Records not yet committed by each stage's consumer group.",
		}, []string{"stage"}),
		TierWaiting: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_tier_waiting_records",
			Help: "Records waiting in each retry tier (the tier group's lag).",
		}, []string{"tier"}),
		DLQDepth: f.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_dlq_records",
			Help: "Records in the dead-letter topic.",
		}),
	}
}

// Observe wraps a stage so that every stage gets the same metrics and
// logging, added once here rather than inside each stage.
func Observe(s Stage, name, dlqTopic, attemptsTopic string, m *Metrics, log *slog.Logger) Stage {
	return StageFunc(func(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error) {
		start := time.Now()
		out, err := s.Process(ctx, r)
		if err != nil {
			return nil, err
		}
		m.StageSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		m.StageRecords.WithLabelValues(name).Inc()
		for _, o := range out {
			switch o.Topic {
			case dlqTopic:
				m.DLQWritten.WithLabelValues(name).Inc()
			case attemptsTopic:
				a, err := processors.DecodeAttempt(o.Value)
				if err != nil {
					log.Error("stage produced an undecodable attempt record", "err", err)
					continue
				}
				m.Deliveries.WithLabelValues(name, string(a.Outcome), string(a.ErrorClass)).Inc()
				if !a.Skipped {
					m.DeliveryLatency.WithLabelValues(name).Observe(a.LatencyMS / 1000)
				}
			}
		}
		return out, nil
	})
}

// StageGroup names a stage and its consumer group, for lag monitoring.
type StageGroup struct {
	Stage string
	Group string
	Tier  bool
}

// MonitorLag refreshes the lag and DLQ depth gauges every interval until ctx
// is done. Errors are logged and retried on the next tick.
func MonitorLag(ctx context.Context, adm *kadm.Client, groups []StageGroup, dlqTopic string, m *Metrics, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Group
	}
	for {
		if lags, err := adm.Lag(ctx, names...); err == nil {
			for _, g := range groups {
				l, ok := lags[g.Group]
				if !ok || l.Error() != nil {
					continue
				}
				total := float64(l.Lag.Total())
				m.ConsumerLag.WithLabelValues(g.Stage).Set(total)
				if g.Tier {
					m.TierWaiting.WithLabelValues(g.Stage).Set(total)
				}
			}
		} else if ctx.Err() == nil {
			log.Warn("read consumer lag", "err", err)
		}
		if depth, err := TopicDepth(ctx, adm, dlqTopic); err == nil {
			m.DLQDepth.Set(float64(depth))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TopicDepth is the number of records in a topic: end minus start offsets.
func TopicDepth(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Err == nil {
			n += o.Offset - s.Offset
		}
	})
	return n, nil
}
