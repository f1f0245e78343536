package pipeline

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A lane that admission refuses (a rate-limited endpoint) waits until the
// time it is given, takes no concurrency meanwhile, and holds back only its
// own key: the other lanes of the partition start.
func TestSchedulerAdmissionHoldsOnlyTheRefusedLane(t *testing.T) {
	lim := Limits{Concurrency: 2, MaxRecords: 100, MaxBytes: 1 << 20}
	s, _ := schedulerWith(lim,
		spec{0, "slow\x00k1", 0}, spec{1, "slow\x00k2", 0}, spec{2, "slow\x00k1", 0},
		spec{3, "fast\x00k1", 0}, spec{4, "fast\x00k2", 0})
	open := at(5) // the slow lane's next token
	admit := func(tk *task, now time.Time) (time.Time, bool) {
		if strings.HasPrefix(tk.key, "slow") && now.Before(open) {
			return open, false
		}
		return time.Time{}, true
	}
	got := offsets(s.startAdmitted(at(0), admit))
	if want := []int64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("started %v at 0, want the fast lane %v: a refused lane must not take concurrency", got, want)
	}
	if due, ok := s.nextDue(at(0)); !ok || !due.Equal(open) {
		t.Fatalf("nextDue = %v, %v; want the refused lane's retry %v", due, ok, open)
	}
	if got := offsets(s.startAdmitted(at(4), admit)); len(got) != 0 {
		t.Fatalf("started %v before the retry time", got)
	}
}

// Once admitted, a refused task keeps its key's order: a key's later task
// never overtakes it.
func TestSchedulerAdmissionKeepsKeyOrder(t *testing.T) {
	lim := Limits{Concurrency: 10, MaxRecords: 100, MaxBytes: 1 << 20}
	s, tasks := schedulerWith(lim, spec{0, "a", 0}, spec{1, "a", 0})
	refuse := true
	admit := func(*task, time.Time) (time.Time, bool) {
		if refuse {
			return at(1), false
		}
		return time.Time{}, true
	}
	if got := offsets(s.startAdmitted(at(0), admit)); len(got) != 0 {
		t.Fatalf("started %v while refused", got)
	}
	refuse = false
	if got := offsets(s.startAdmitted(at(1), admit)); !slices.Equal(got, []int64{0}) {
		t.Fatalf("started %v, want offset 0 alone (its key's head)", got)
	}
	s.finished(tasks[0], false)
	if got := offsets(s.startAdmitted(at(1), admit)); !slices.Equal(got, []int64{1}) {
		t.Fatalf("started %v, want offset 1", got)
	}
}
