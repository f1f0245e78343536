package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/processors"
)

// attemptTally follows the attempts topic (committed records only) to learn
// which pairs moved to which tier and which reached the DLQ.
type attemptTally struct {
	mu       sync.Mutex
	retried  map[string]int
	dead     map[string]bool
	outcomes map[string]uint64 // attempt records per outcome
}

func newAttemptTally() *attemptTally {
	return &attemptTally{retried: make(map[string]int), dead: make(map[string]bool), outcomes: make(map[string]uint64)}
}

func (t *attemptTally) follow(ctx context.Context, env *app.Env, topic string) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil))}, env.KafkaOpts...)...)
	if err != nil {
		slog.Error("follow attempts", "err", err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			a, err := processors.DecodeAttempt(r.Value)
			if err != nil {
				return
			}
			t.mu.Lock()
			t.outcomes[string(a.Outcome)]++
			switch {
			case a.Outcome == processors.OutcomeRetry && a.NextTier != "":
				t.retried[a.NextTier]++
			case a.Outcome == processors.OutcomeDeadLettered:
				t.dead[a.EventID] = true
			}
			t.mu.Unlock()
		})
	}
}

func (t *attemptTally) tierString() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.retried))
	for k := range t.retried {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, t.retried[k])
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, " ")
}
