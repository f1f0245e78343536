package app

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
