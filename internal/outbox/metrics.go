package outbox

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	active       prometheus.Gauge
	relayed      prometheus.Counter
	deadLettered prometheus.Counter
	lagRows      prometheus.Gauge
	lagSeconds   prometheus.Gauge
	errors       prometheus.Counter
}

// newMetrics registers the relay's metrics with reg; a nil reg keeps them
// unregistered.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		active:       f.NewGauge(prometheus.GaugeOpts{Name: "hookline_outbox_active", Help: "1 while this outbox relay holds the table's lock and relays, 0 while it stands by."}),
		relayed:      f.NewCounter(prometheus.CounterOpts{Name: "hookline_outbox_rows_relayed_total", Help: "Outbox rows published to the events topic."}),
		deadLettered: f.NewCounter(prometheus.CounterOpts{Name: "hookline_outbox_rows_dead_lettered_total", Help: "Outbox rows that were not valid events, published to the DLQ with the reason."}),
		lagRows:      f.NewGauge(prometheus.GaugeOpts{Name: "hookline_outbox_lag_rows", Help: "Rows waiting in the outbox table (sampled every 5 s by the active relay)."}),
		lagSeconds:   f.NewGauge(prometheus.GaugeOpts{Name: "hookline_outbox_lag_seconds", Help: "Age of the oldest row waiting in the outbox table."}),
		errors:       f.NewCounter(prometheus.CounterOpts{Name: "hookline_outbox_errors_total", Help: "PostgreSQL or Kafka errors that interrupted the relay (it starts over with backoff)."}),
	}
}
