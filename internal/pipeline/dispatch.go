package pipeline

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func (r *Runner) drainCompletions() {
	for {
		select {
		case c := <-r.done:
			r.complete(c)
		default:
			return
		}
	}
}

func (r *Runner) complete(c completion) {
	if r.parts[c.p.id] != c.p {
		return // the partition was revoked or reset since; its records are forgotten
	}
	r.inflight--
	if c.deferred {
		// Not finished: it runs again at its new due time, and what it
		// produced meanwhile commits with the next transaction.
		c.p.sched.deferTask(c.t, c.later)
		c.p.side = append(c.p.side, c.out...)
		return
	}
	// Not processed (cancellation): run it again unless shutting down.
	c.p.sched.finished(c.t, c.err != nil)
	if c.err != nil {
		r.log.Debug("record not processed", "partition", c.p.id, "offset", c.t.offset, "err", c.err)
		return
	}
	it := c.t.it
	it.outs[c.t.lane] = c.out
	if it.pending--; it.pending > 0 {
		return
	}
	for _, out := range it.outs {
		it.out = append(it.out, out...)
	}
	it.outs = nil
	it.done = true
	r.doneHeld++
}

// dispatchAll starts what each partition's scheduler says may start, and
// pauses a partition whose window is full (resuming it once half drained).
func (r *Runner) dispatchAll(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := r.cfg.Now()
	var pause, resume []int32
	var keys, tasks int
	var admit admitFunc
	if r.cfg.Admit != nil {
		admit = func(t *task, now time.Time) (time.Time, bool) {
			lane := t.it.lanes[t.lane]
			if lane == "" {
				return time.Time{}, true
			}
			release, retry, ok := r.cfg.Admit(lane, now)
			t.release = release
			return retry, ok
		}
	}
	for _, p := range r.parts {
		for _, t := range p.sched.startAdmitted(now, admit) {
			r.inflight++
			r.workers.Add(1)
			go r.work(ctx, p, t)
		}
		switch full := p.sched.full(p.paused); {
		case full && !p.paused:
			p.paused = true
			pause = append(pause, p.id)
		case !full && p.paused:
			p.paused = false
			resume = append(resume, p.id)
		}
		keys += p.sched.heldKeys
		tasks += p.sched.heldTasks
	}
	r.heldKeys.Store(int64(keys))
	r.heldRecords.Store(int64(tasks))
	cl := r.sess.Client()
	if len(pause) > 0 {
		cl.PauseFetchPartitions(map[string][]int32{r.cfg.Topic: pause})
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}

func (r *Runner) work(ctx context.Context, p *partition, t *task) {
	defer r.workers.Done()
	ctx = withLane(ctx, t.it.lanes[t.lane])
	out, err := r.cfg.Stage.Process(ctx, t.it.rec, t.it.handed)
	c := completion{p: p, t: t, out: out, err: err}
	if d, ok := DeferredOf(err); ok {
		c.later, c.out = d.Deferred()
		c.err, c.deferred = nil, true
	}
	if t.release != nil {
		t.release()
		t.release = nil
	}
	src := sourceOf(t.it.rec)
	for _, o := range c.out {
		o.Headers = append(o.Headers, kgo.RecordHeader{Key: HeaderSource, Value: src})
	}
	select {
	case r.done <- c:
		r.poke()
	case <-r.abandoned:
	}
}
