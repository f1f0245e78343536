package pipeline

import (
	"container/heap"
	"time"
)

// Defaults of a partition's limits; config.Default refers to them.
const (
	// DefaultConcurrency bounds the records processed at once per partition.
	DefaultConcurrency = 32
	// DefaultMaxInFlight bounds the records a partition's window holds: how
	// far a tier reads ahead past records not due yet. With ±20% jitter, a
	// window of 1000 left records drawn low waiting for room behind ones
	// drawn high (p99 1 s in hookline bench --scenario tiers); 3000 kept
	// the p99 at 10 ms (docs/performance.md).
	DefaultMaxInFlight = 3000
	// DefaultMaxInFlightBytes bounds the bytes (keys, values, headers) a
	// partition's window holds.
	DefaultMaxInFlightBytes = 16 << 20
)

// Limits bound one partition's work and read-ahead window.
type Limits struct {
	// Concurrency bounds the tasks running at once.
	Concurrency int
	// MaxRecords and MaxBytes bound the records held: polled and not yet
	// committed, whether waiting, running or completed.
	MaxRecords int
	MaxBytes   int64
}

// task is one unit of scheduling: one lane of a record (see
// RunnerConfig.Lanes), under its scheduling key.
type task struct {
	offset int64
	key    string
	due    time.Time
	// What the runner runs; the scheduler does not look at them.
	it   *item
	lane int // index in it.lanes
	// held: the stage deferred it (see Deferred); its key waits for it.
	held bool
	// release gives back what admission took (an in-flight slot); nil
	// when nothing.
	release func()
}

// scheduler decides which records of one partition may start now, given
// their due times, their keys and the partition's limits. It is pure: no
// Kafka and no clock; the caller says what time it is.
//
// The tasks of one key run one after another in offset order: only a key's
// first task that has not run is a candidate (in the heap), the rest wait
// in the key's queue. Candidates start earliest due first, then in offset
// order, so a task that is not due holds back only its own key.
type scheduler struct {
	lim     Limits
	keys    map[string]*keyQueue
	cands   candHeap
	running int
	records int   // held records
	bytes   int64 // their size
	// heldKeys are the keys whose first task was deferred, heldTasks
	// their tasks, that first one included.
	heldKeys, heldTasks int
}

// keyQueue is one key's tasks that have not completed: its head is
// running or a candidate, the rest wait behind it in offset order.
type keyQueue struct {
	queue []*task
}

func newScheduler(lim Limits) *scheduler {
	return &scheduler{lim: lim, keys: make(map[string]*keyQueue)}
}

// hold accounts for a polled record of size bytes in the window.
func (s *scheduler) hold(size int64) {
	s.records++
	s.bytes += size
}

// release takes a committed record of size bytes out of the window.
func (s *scheduler) release(size int64) {
	s.records--
	s.bytes -= size
}

// add queues a task behind the earlier tasks of its key. Tasks of one key
// must be added in offset order.
func (s *scheduler) add(t *task) {
	kq := s.keys[t.key]
	if kq == nil {
		kq = &keyQueue{}
		s.keys[t.key] = kq
	}
	if len(kq.queue) > 0 && kq.queue[0].held {
		s.heldTasks++
	}
	kq.queue = append(kq.queue, t)
	if len(kq.queue) == 1 {
		heap.Push(&s.cands, t)
	}
}

// start returns the tasks that may start at now, marking them running:
// due candidates, earliest due first, as long as concurrency allows.
func (s *scheduler) start(now time.Time) []*task { return s.startAdmitted(now, nil) }

// admitFunc decides whether a due task may start at now. When it may not,
// it returns when to ask again (after now): the task stays its key's
// candidate, due then, and takes no concurrency.
type admitFunc func(t *task, now time.Time) (retry time.Time, ok bool)

// startAdmitted is start with admission: a task that admit refuses waits
// until the time admit gives, holding back only its own key, and the
// candidates behind it start in its place.
func (s *scheduler) startAdmitted(now time.Time, admit admitFunc) []*task {
	var out []*task
	for s.running < s.lim.Concurrency && len(s.cands) > 0 && !s.cands[0].due.After(now) {
		t := heap.Pop(&s.cands).(*task)
		if admit != nil {
			if retry, ok := admit(t, now); !ok {
				if !retry.After(now) {
					retry = now.Add(time.Millisecond)
				}
				t.due = retry
				heap.Push(&s.cands, t)
				continue
			}
		}
		out = append(out, t)
		s.running++
	}
	return out
}

// finished frees the key of a task that ran. again means it was not
// processed: it becomes its key's candidate again. Otherwise the key's next
// task does.
func (s *scheduler) finished(t *task, again bool) {
	s.running--
	if again {
		heap.Push(&s.cands, t)
		return
	}
	kq := s.keys[t.key]
	if t.held {
		s.heldKeys--
		s.heldTasks -= len(kq.queue)
	}
	kq.queue[0] = nil
	kq.queue = kq.queue[1:]
	if len(kq.queue) == 0 {
		delete(s.keys, t.key)
		return
	}
	heap.Push(&s.cands, kq.queue[0])
}

// deferTask puts a running task back as its key's candidate, due at due:
// the stage has not finished it, and its key's later tasks wait behind it.
func (s *scheduler) deferTask(t *task, due time.Time) {
	if !t.held {
		t.held = true
		s.heldKeys++
		s.heldTasks += len(s.keys[t.key].queue)
	}
	t.due = due
	s.finished(t, true)
}

// nextDue is the earliest due time of a candidate that is not due at now:
// when the caller must look again. A due candidate that could not start
// waits for a task to finish instead.
func (s *scheduler) nextDue(now time.Time) (time.Time, bool) {
	if len(s.cands) == 0 || !s.cands[0].due.After(now) {
		return time.Time{}, false
	}
	return s.cands[0].due, true
}

// canStart reports whether a candidate is due at now and concurrency has
// room: the caller must dispatch again at once. Without admission that is
// only so between a completion and the next dispatch; with it, a refused
// candidate falls due between one dispatch and the next wait.
func (s *scheduler) canStart(now time.Time) bool {
	return s.running < s.lim.Concurrency && len(s.cands) > 0 && !s.cands[0].due.After(now)
}

// full reports whether the window holds too much to read further ahead.
// A paused partition stays paused until its window is half drained, so
// that the next fetch overlaps with the work still held.
func (s *scheduler) full(paused bool) bool {
	if paused {
		return s.records > s.lim.MaxRecords/2 || s.bytes > s.lim.MaxBytes/2
	}
	return s.records >= s.lim.MaxRecords || s.bytes >= s.lim.MaxBytes
}

// candHeap orders candidates by due time, then offset.
type candHeap []*task

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].offset < h[j].offset
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(*task)) }
func (h *candHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
