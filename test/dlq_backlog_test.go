package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/dlq"
)

// backlogCounts reads a fresh backlog of the DLQ, as a restarted process
// would, and returns its figures.
func (h *harness) backlogCounts(d *dlq.Client) dlq.BacklogCounts {
	h.t.Helper()
	b := d.NewBacklog()
	if err := b.Refresh(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	n, ok := b.Counts()
	if !ok {
		h.t.Fatal("backlog not synced after a refresh")
	}
	return n
}

// The DLQ backlog counts the dead-lettered records no replay has dealt
// with: a replay takes exactly its matches off, a replayed pair that fails
// again counts again, a dry run changes nothing, and a process that reads
// the topics anew (a restart) gets the same figures as one that followed
// them all along.
func TestDLQBacklogCountsWhatNoReplayHasDealtWith(t *testing.T) {
	h := dlqHarness(t)
	deadA, deadB := newReceiver(t, dead), newReceiver(t, dead)
	h.dlqPut("a", "acme", deadA)
	h.dlqPut("b", "acme", deadB)
	const n = 12
	for i := range n {
		h.send(fmt.Sprintf("a-%d", i), "a", fmt.Sprint("k", i), map[string]int{"n": i})
		h.send(fmt.Sprintf("b-%d", i), "b", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	h.dlqEntries(2 * n)
	d := h.dlqClient()
	live := d.NewBacklog()
	refresh := func() dlq.BacklogCounts {
		t.Helper()
		if err := live.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		c, _ := live.Counts()
		return c
	}
	if got, want := refresh(), (dlq.BacklogCounts{Waiting: 2 * n, DeadLettered: 2 * n}); got != want {
		t.Fatalf("before any replay: %+v, want %+v", got, want)
	}

	if _, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "dry", Operator: "tester", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	okA := newReceiver(t, nil)
	h.dlqRepair("a", okA)
	if _, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "fix-a", Operator: "tester", Filter: dlq.Filter{Endpoints: []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	want := dlq.BacklogCounts{Waiting: n, DeadLettered: 2 * n, Replayed: n}
	if got := refresh(); got != want {
		t.Fatalf("after replaying a: %+v, want %+v", got, want)
	}
	if got := h.backlogCounts(d); got != want {
		t.Fatalf("after replaying a, read anew: %+v, want %+v", got, want)
	}

	// b is still dead: its replayed pairs come back to the DLQ, as new
	// records that wait again.
	if _, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "retry-b", Operator: "tester", Filter: dlq.Filter{Endpoints: []string{"b"}}}); err != nil {
		t.Fatal(err)
	}
	h.dlqEntries(3 * n)
	want = dlq.BacklogCounts{Waiting: n, DeadLettered: 3 * n, Replayed: 2 * n}
	waitFor(t, 30*time.Second, "the backlog sees b's pairs fail again", func() bool { return refresh() == want })
	if got := h.backlogCounts(d); got != want {
		t.Fatalf("after b failed again, read anew: %+v, want %+v", got, want)
	}
	// What left the backlog was delivered.
	waitFor(t, 30*time.Second, "a's replayed events delivered", func() bool {
		_, counts, _ := okA.snapshot()
		return len(counts) == n
	})
}
