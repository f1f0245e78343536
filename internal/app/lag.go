package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/internal/dlq"
)

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
