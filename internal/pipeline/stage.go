package pipeline

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stage processes one consumed record and returns the records it produces.
// An error means the record was not processed (only on cancellation); the
// runner does not commit past it.
//
// handedOff are successors of r that are already committed in the stage's
// outputs although r's offset is not: a crash tore the transaction that
// committed them (see RunnerConfig.Outputs). The stage must not produce
// those successors again. It is nil unless the hand-off audit runs and
// found some.
type Stage interface {
	Process(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error)
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error)

// Process calls f.
func (f StageFunc) Process(ctx context.Context, r *kgo.Record, handedOff []*kgo.Record) ([]*kgo.Record, error) {
	return f(ctx, r, handedOff)
}

type laneKey struct{}

// Lane returns the lane of the record being processed (see
// RunnerConfig.Lanes); "" when the record is not split.
func Lane(ctx context.Context) string {
	l, _ := ctx.Value(laneKey{}).(string)
	return l
}

func withLane(ctx context.Context, lane string) context.Context {
	if lane == "" {
		return ctx
	}
	return context.WithValue(ctx, laneKey{}, lane)
}
