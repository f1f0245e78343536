package pipeline

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// at is t0 plus s seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

type spec struct {
	offset int64
	key    string
	due    int // seconds after t0
}

func schedulerWith(lim Limits, specs ...spec) (*scheduler, map[int64]*task) {
	s := newScheduler(lim)
	tasks := make(map[int64]*task)
	for _, sp := range specs {
		t := &task{offset: sp.offset, key: sp.key, due: at(sp.due)}
		tasks[sp.offset] = t
		s.hold(1)
		s.add(t)
	}
	return s, tasks
}

func offsets(ts []*task) []int64 {
	out := []int64{}
	for _, t := range ts {
		out = append(out, t.offset)
	}
	return out
}

func TestSchedulerStartsDueRecordsOfOtherKeysBehindOnesNotDue(t *testing.T) {
	lim := Limits{Concurrency: 10, MaxRecords: 100, MaxBytes: 1 << 20}
	for _, tc := range []struct {
		name  string
		specs []spec
		now   int
		want  []int64
	}{
		{"a head not due holds only its key",
			[]spec{{0, "a", 3600}, {1, "b", 0}, {2, "c", 1}}, 1, []int64{1, 2}},
		{"a due record waits behind its key's record that is not due",
			[]spec{{0, "a", 3600}, {1, "a", 0}, {2, "b", 0}}, 1, []int64{2}},
		{"nothing starts early",
			[]spec{{0, "a", 5}, {1, "b", 6}}, 4, []int64{}},
		{"a record starts at its due time exactly",
			[]spec{{0, "a", 5}}, 5, []int64{0}},
		{"earliest due first, then offset order",
			[]spec{{0, "a", 3}, {1, "b", 1}, {2, "c", 1}, {3, "d", 2}}, 3, []int64{1, 2, 3, 0}},
		{"one record of a key at a time",
			[]spec{{0, "a", 0}, {1, "a", 0}, {2, "b", 0}, {3, "a", 0}}, 0, []int64{0, 2}},
		{"jitter drawn high holds only its own key",
			[]spec{{0, "a", 36}, {1, "b", 24}, {2, "c", 30}, {3, "d", 25}}, 30, []int64{1, 3, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := schedulerWith(lim, tc.specs...)
			if got := offsets(s.start(at(tc.now))); !slices.Equal(got, tc.want) {
				t.Fatalf("started %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSchedulerKeepsKeyOrderAndConcurrency(t *testing.T) {
	lim := Limits{Concurrency: 2, MaxRecords: 100, MaxBytes: 1 << 20}
	s, tasks := schedulerWith(lim, spec{0, "a", 0}, spec{1, "b", 0}, spec{2, "c", 0}, spec{3, "a", 0})
	if got := offsets(s.start(at(0))); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("started %v, want [0 1]: concurrency is 2", got)
	}
	// A record that was not processed runs again before its key's next.
	s.finished(tasks[0], true)
	if got := offsets(s.start(at(0))); !slices.Equal(got, []int64{0}) {
		t.Fatalf("after a record was not processed, started %v, want it again", got)
	}
	s.finished(tasks[0], false)
	if got := offsets(s.start(at(0))); !slices.Equal(got, []int64{2}) {
		t.Fatalf("started %v, want [2] (offset order among due records)", got)
	}
	s.finished(tasks[1], false)
	if got := offsets(s.start(at(0))); !slices.Equal(got, []int64{3}) {
		t.Fatalf("started %v, want [3]: the key's next record once the first finished", got)
	}
	s.finished(tasks[2], false)
	s.finished(tasks[3], false)
	if len(s.keys) != 0 || s.running != 0 {
		t.Fatalf("after every record finished, %d keys and %d running are left", len(s.keys), s.running)
	}
}

func TestSchedulerNextDue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		specs  []spec
		now    int
		want   int
		wantOK bool
	}{
		{"empty", nil, 0, 0, false},
		{"earliest record not due", []spec{{0, "a", 30}, {1, "b", 20}, {2, "c", 25}}, 10, 20, true},
		{"only the key's head counts", []spec{{0, "a", 30}, {1, "a", 20}}, 10, 30, true},
		{"a due record waits for a finish, not a timer", []spec{{0, "a", 5}, {1, "b", 20}}, 10, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := schedulerWith(Limits{Concurrency: 0, MaxRecords: 10, MaxBytes: 10}, tc.specs...)
			got, ok := s.nextDue(at(tc.now))
			if ok != tc.wantOK || (ok && !got.Equal(at(tc.want))) {
				t.Fatalf("nextDue = %v, %v; want %v, %v", got, ok, at(tc.want), tc.wantOK)
			}
		})
	}
}

func TestSchedulerWindowIsBoundedInRecordsAndBytes(t *testing.T) {
	lim := Limits{Concurrency: 1, MaxRecords: 4, MaxBytes: 1000}
	for _, tc := range []struct {
		name    string
		records int
		bytes   int64
		paused  bool
		want    bool
	}{
		{"room", 3, 999, false, false},
		{"records reach the bound", 4, 10, false, true},
		{"bytes reach the bound", 1, 1000, false, true},
		{"paused stays paused until half drained (records)", 3, 10, true, true},
		{"paused resumes at half the records", 2, 10, true, false},
		{"paused stays paused until half drained (bytes)", 1, 501, true, true},
		{"paused resumes at half the bytes", 1, 500, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(lim)
			for range tc.records {
				s.hold(tc.bytes / int64(tc.records))
			}
			s.bytes = tc.bytes
			if got := s.full(tc.paused); got != tc.want {
				t.Fatalf("full(%v) with %d records, %d bytes = %v, want %v", tc.paused, tc.records, tc.bytes, got, tc.want)
			}
		})
	}
	t.Run("a window of one record resumes once empty", func(t *testing.T) {
		s := newScheduler(Limits{Concurrency: 1, MaxRecords: 1, MaxBytes: 1 << 20})
		s.hold(10)
		if !s.full(false) {
			t.Fatal("a window of one is full with one record")
		}
		s.release(10)
		if s.full(true) {
			t.Fatal("an empty window of one stays paused")
		}
	})
}

// A deferred task (a strict endpoint's failed event) holds its key until
// its new due time, lets other keys start, and the held counts follow it.
func TestSchedulerDeferredTaskHoldsItsKeyUntilItsNewDueTime(t *testing.T) {
	lim := Limits{Concurrency: 10, MaxRecords: 100, MaxBytes: 1 << 20}
	s, tasks := schedulerWith(lim, spec{0, "k", 0}, spec{1, "k", 0}, spec{2, "j", 0}, spec{3, "k", 0})
	if got := offsets(s.start(at(0))); !slices.Equal(got, []int64{0, 2}) {
		t.Fatalf("started %v, want the heads of k and j", got)
	}
	s.deferTask(tasks[0], at(30))
	s.finished(tasks[2], false)
	if s.heldKeys != 1 || s.heldTasks != 3 {
		t.Errorf("held keys %d, tasks %d; want 1 key with 3 tasks", s.heldKeys, s.heldTasks)
	}
	if got := offsets(s.start(at(29))); len(got) != 0 {
		t.Errorf("started %v before the deferred head was due: k's later records must wait, and nothing is early", got)
	}
	if due, ok := s.nextDue(at(29)); !ok || !due.Equal(at(30)) {
		t.Errorf("nextDue = %v %v, want the deferred head's new due time", due, ok)
	}
	s.add(&task{offset: 4, key: "k", due: at(0)})
	if s.heldTasks != 4 {
		t.Errorf("held tasks %d after one more record of k, want 4", s.heldTasks)
	}
	// Deferred again: still one key.
	if got := offsets(s.start(at(30))); !slices.Equal(got, []int64{0}) {
		t.Fatalf("started %v at the new due time, want only the deferred head", got)
	}
	s.deferTask(tasks[0], at(60))
	if s.heldKeys != 1 || s.heldTasks != 4 {
		t.Errorf("deferred twice: held keys %d, tasks %d; want 1 and 4", s.heldKeys, s.heldTasks)
	}
	// Done at last: the key's next record starts, in offset order.
	s.start(at(60))
	s.finished(tasks[0], false)
	if s.heldKeys != 0 || s.heldTasks != 0 {
		t.Errorf("released: held keys %d, tasks %d; want 0", s.heldKeys, s.heldTasks)
	}
	if got := offsets(s.start(at(60))); !slices.Equal(got, []int64{1}) {
		t.Errorf("after the held head, started %v, want k's next record", got)
	}
}
