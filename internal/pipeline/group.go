package pipeline

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Rebalances: the group callbacks queue what they saw, the loop applies it.

// partEvent is an assignment (with what each partition starts from) or a
// revocation or loss, as the group callbacks saw it.
type partEvent struct {
	assigned bool
	ps       []int32
	starts   map[int32]*partitionStart
}

// release resumes revoked or lost partitions at once (a pause must never
// outlive ownership) and tells the loop to forget them.
func (r *Runner) release(cl *kgo.Client, m map[string][]int32) {
	ps := m[r.cfg.Topic]
	if len(ps) == 0 {
		return
	}
	cl.ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: ps})
	if r.cfg.OnReleased != nil {
		r.cfg.OnReleased(ps)
	}
	r.queue(partEvent{ps: ps})
}

func (r *Runner) queue(ev partEvent) {
	r.eventsMu.Lock()
	r.events = append(r.events, ev)
	r.eventsMu.Unlock()
	r.poke()
}

// loadDone reads the done sets of newly assigned partitions from the
// group's committed metadata, waiting out pending transactions so that what
// it reads matches the offsets the client will fetch from.
func (r *Runner) loadDone(ctx context.Context, cl *kgo.Client, ps []int32) {
	if len(ps) == 0 {
		return
	}
	adm := kadm.NewClient(cl)
	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(time.Minute)), ctx)
	var offsets kadm.OffsetResponses
	err := backoff.Retry(func() error {
		var err error
		offsets, err = adm.FetchOffsets(kadm.RequireStable(ctx), r.cfg.Group)
		if err == nil {
			err = offsets.Error()
		}
		return err
	}, b)
	if err != nil {
		// Records completed past a held one may be processed again.
		r.log.Error("read committed done sets; records committed past a slow one may be processed again", "err", err)
		r.queue(partEvent{assigned: true, ps: ps})
		return
	}
	starts := make(map[int32]*partitionStart, len(ps))
	marks := make(map[int32]int64, len(ps))
	for _, p := range ps {
		st := &partitionStart{}
		starts[p] = st
		o, ok := offsets.Lookup(r.cfg.Topic, p)
		if !ok || o.At < 0 {
			continue
		}
		marks[p] = o.At
		if m, err := decodeCommitMeta(o.Metadata, o.At, r.outputsID); err == nil {
			st.done, st.outNext = m.done, m.outNext
		}
	}
	if err := r.audit(ctx, cl, starts, marks); err != nil {
		r.log.Warn("hand-off audit incomplete; a record whose transaction a crash tore may be handed on twice", "err", err)
	}
	for p, st := range starts {
		if n := len(st.handed); n > 0 {
			r.log.Warn("records already handed on although their offsets were not committed (a torn transaction); not handing them on again",
				"partition", p, "records", n)
		}
	}
	r.queue(partEvent{assigned: true, ps: ps, starts: starts})
}

// handleEvents applies the queued assignments and revocations in order.
// A revoked or lost partition's records are forgotten. A newly assigned
// partition starts over from what the assignment loaded, even if the loop
// has not seen it revoked: the records it held belong to an earlier
// generation, and kgo fetches from the committed offset again.
func (r *Runner) handleEvents() {
	r.eventsMu.Lock()
	evs := r.events
	r.events = nil
	r.eventsMu.Unlock()
	var resume []int32
	for _, ev := range evs {
		for _, id := range ev.ps {
			if p := r.parts[id]; p != nil {
				r.inflight -= p.sched.running
				delete(r.parts, id)
			}
			delete(r.seeds, id)
			if st := ev.starts[id]; ev.assigned && st != nil {
				r.seeds[id] = st
			}
		}
		if !ev.assigned {
			resume = append(resume, ev.ps...)
		}
	}
	// The loop may have paused a partition after the callback resumed it.
	if len(resume) > 0 {
		r.sess.Client().ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}
