package app

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// DefaultEndpointLabels is how many endpoints get their own series in the
// per-endpoint metrics of a process (config metrics_endpoint_labels).
const DefaultEndpointLabels = 100

// OtherEndpoint is the endpoint label of the deliveries to endpoints past
// the bound, or to every endpoint when the label is off.
const OtherEndpoint = "_other"

// Metrics are the pipeline's Prometheus metrics.
type Metrics struct {
	Deliveries         *prometheus.CounterVec
	DeliveryLatency    *prometheus.HistogramVec
	EndpointDeliveries *prometheus.CounterVec
	StageRecords       *prometheus.CounterVec
	StageSeconds       *prometheus.HistogramVec
	TierLateness       *prometheus.HistogramVec
	DLQWritten         *prometheus.CounterVec
	ConsumerLag        *prometheus.GaugeVec
	TierWaiting        *prometheus.GaugeVec

	endpoints *endpointLabels
}

// NewMetrics registers the pipeline metrics with reg. maxEndpoints bounds
// the endpoint label (see config metrics_endpoint_labels); 0 turns it off.
func NewMetrics(reg prometheus.Registerer, maxEndpoints int) *Metrics {
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
		EndpointDeliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_endpoint_deliveries_total",
			Help: "Delivery attempts per endpoint (the first metrics_endpoint_labels endpoints; later ones as _other) by HTTP status: 2xx, 3xx, 401, 403, 4xx, 5xx, or none (no response, or no request made).",
		}, []string{"endpoint", "status"}),
		StageRecords: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_stage_records_total",
			Help: "Deliveries processed by each stage: one per record and endpoint (a tenant event is one per subscriber).",
		}, []string{"stage"}),
		StageSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookline_stage_process_seconds",
			Help:    "Time to process one delivery (a record, for one endpoint), per stage.",
			Buckets: prometheus.DefBuckets,
		}, []string{"stage"}),
		TierLateness: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookline_tier_lateness_seconds",
			Help:    "How long after it was due a retry tier started processing a record.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"tier"}),
		DLQWritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_dlq_records_written_total",
			Help: "Records this process wrote to the dead-letter topic, by the stage that wrote them (counted when written; an aborted transaction's count stays).",
		}, []string{"stage"}),
		ConsumerLag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_consumer_lag_records",
			Help: "Records not yet committed by each stage's consumer group.",
		}, []string{"stage"}),
		TierWaiting: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_tier_waiting_records",
			Help: "Records waiting in each retry tier (the tier group's lag).",
		}, []string{"tier"}),
		endpoints: &endpointLabels{max: maxEndpoints, seen: make(map[string]struct{})},
	}
}

// endpointLabels bounds the endpoint label: the first max endpoint ids seen
// keep theirs, every later one is OtherEndpoint.
type endpointLabels struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func (l *endpointLabels) label(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[id]; ok {
		return id
	}
	if len(l.seen) >= l.max {
		return OtherEndpoint
	}
	l.seen[id] = struct{}{}
	return id
}

// StatusLabel is the status label of an attempt's HTTP status: 401 and
// 403 on their own (a receiver refusing the signature), else the class.
func StatusLabel(code int) string {
	switch {
	case code == 401, code == 403:
		return strconv.Itoa(code)
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500 && code < 600:
		return "5xx"
	}
	return "none"
}

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
				a, err := processors.DecodeAttempt(o.Value)
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

// StageGroup names a stage and its consumer group, for lag monitoring.
type StageGroup struct {
	Stage string
	Group string
	Tier  bool
}

// MonitorLag refreshes the lag gauges and the DLQ backlog every interval
// until ctx is done. Errors are logged and retried on the next tick.
func MonitorLag(ctx context.Context, adm *kadm.Client, groups []StageGroup, backlog *dlq.Backlog, m *Metrics, every time.Duration, log *slog.Logger) {
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
		if err := backlog.Refresh(ctx); err != nil && ctx.Err() == nil {
			log.Warn("read the DLQ and its replays", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// backlogCollector exports a DLQ backlog's figures, and nothing until the
// backlog has read the DLQ and the audit trail once: a partial count after
// a restart would look like records leaving the DLQ, and a counter that
// starts low like a reset.
type backlogCollector struct {
	b                               *dlq.Backlog
	waiting, deadLettered, replayed *prometheus.Desc
}

func newBacklogCollector(b *dlq.Backlog) *backlogCollector {
	return &backlogCollector{
		b: b,
		waiting: prometheus.NewDesc("hookline_dlq_waiting_records",
			"Records in the dead-letter topic that no replay has sent or skipped: what waits for an operator.", nil, nil),
		deadLettered: prometheus.NewDesc("hookline_dlq_dead_lettered_records_total",
			"Records committed to the dead-letter topic since it was created, by any process (read from the topic).", nil, nil),
		replayed: prometheus.NewDesc("hookline_dlq_replayed_records_total",
			"Dead-lettered records that replays handled, from the audit trail: result sent (re-driven) or skipped (matched, could not be sent).", []string{"result"}, nil),
	}
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.deadLettered
	ch <- c.replayed
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	n, ok := c.b.Counts()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(n.Waiting))
	ch <- prometheus.MustNewConstMetric(c.deadLettered, prometheus.CounterValue, float64(n.DeadLettered))
	ch <- prometheus.MustNewConstMetric(c.replayed, prometheus.CounterValue, float64(n.Replayed), "sent")
	ch <- prometheus.MustNewConstMetric(c.replayed, prometheus.CounterValue, float64(n.ReplaySkipped), "skipped")
}
