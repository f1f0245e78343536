package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// newStrictRunner wires the strict stage (processors.Strict): it consumes
// the park topic, delivers strict endpoints' events in order per
// (endpoint, ordering key), and loads each assigned partition's holds
// before it takes its records.
func (s *Service) newStrictRunner(env *Env, events *processors.Delivery, admit func(string, time.Time) (func(), time.Time, bool), txnSuffix string) (*pipeline.Runner, error) {
	set := env.Topics
	opts := env.clientOpts()
	holds := processors.NewHolds()
	st := processors.NewStrict(events, holds, set.Holds)
	name := processors.StageStrict
	rc := s.stageRunnerConfig(env, name, set.Park, txnSuffix, st, admit)
	rc.ClientOpts, rc.Outputs, rc.Lanes = opts, s.auditOutputs(set.DLQ), st.Lanes
	rc.OnAssigned = func(ctx context.Context, ps []int32) error {
		recs, err := readToStable(ctx, opts, set.Holds, ps)
		if err != nil {
			return err
		}
		for p, rs := range recs {
			if err := holds.Load(p, rs); err != nil {
				return err
			}
		}
		return nil
	}
	rc.OnReleased = holds.Drop
	r, err := pipeline.NewRunner(rc)
	if err != nil {
		return nil, err
	}
	env.Holds = holds
	f := promauto.With(env.Prom)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "hookline_held_keys",
		Help:        "Pairs (strict endpoint, ordering key) held by an event that failed, in this process's partitions of the stage.",
		ConstLabels: prometheus.Labels{"stage": name},
	}, func() float64 { return float64(holds.Len()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "hookline_held_events",
		Help:        "Events of held keys, the failed ones included, in the stage's read-ahead windows of this process; more may wait in Kafka beyond them (the stage's consumer lag).",
		ConstLabels: prometheus.Labels{"stage": name},
	}, func() float64 { _, n := r.Held(); return float64(n) })
	return r, nil
}
