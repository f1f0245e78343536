package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Commits: completed records' successors, watermarks and done sets, in one
// transaction.

// flushPlan is what one partition commits in the next transaction.
type flushPlan struct {
	p       *partition
	flushed []*item
	keep    []*item
	mark    int64
	done    doneSet
}

// plan picks the partition's completed records to commit: all of them, not
// only the prefix, as long as the done set stays within its budget. The
// completed prefix moves the watermark and costs no range; only records
// completed above the new watermark do, counted after the ranges below it
// are dropped. (Counting the prefix against the budget could keep the
// watermark record itself back once the done set was full: a window full
// of completed records, paused, that nothing would ever drain.)
func (p *partition) plan() flushPlan {
	fp := flushPlan{p: p, done: p.done.clone()}
	i := 0
	for i < len(p.items) && p.items[i].done {
		i++
	}
	fp.flushed = append(fp.flushed, p.items[:i]...)
	fp.mark = p.next
	if i < len(p.items) {
		fp.mark = p.items[i].rec.Offset
	}
	fp.done.prune(fp.mark)
	budget := maxDoneRanges(max(p.next, fp.done.end()) - fp.mark)
	for _, it := range p.items[i:] {
		if it.done && (fp.done.len() < budget || !fp.done.wouldSplit(it.rec.Offset)) {
			fp.flushed = append(fp.flushed, it)
			fp.done.add(it.rec.Offset)
			continue
		}
		fp.keep = append(fp.keep, it)
	}
	return fp
}

func (r *Runner) completedWaiting() bool {
	if r.doneHeld > 0 {
		return true
	}
	for _, p := range r.parts {
		if p.watermark() != p.committedMark || len(p.side) > 0 {
			return true
		}
	}
	return false
}

// maybeFlush commits the completed records of every partition when the
// flush interval has passed (or always, when final).
func (r *Runner) maybeFlush(final bool) error {
	now := r.cfg.Now()
	if !final && now.Sub(r.lastEnd) < r.cfg.FlushInterval {
		return nil
	}
	var out []*kgo.Record
	plans := make(map[int32]flushPlan, len(r.parts))
	changed := false
	for id, p := range r.parts {
		fp := p.plan()
		plans[id] = fp
		out = append(out, p.side...)
		for _, it := range fp.flushed {
			out = append(out, it.out...)
		}
		changed = changed || len(fp.flushed) > 0 || fp.mark != p.committedMark || len(p.side) > 0
	}
	if !changed {
		r.lastEnd = now
		return nil
	}

	committed, outNext, err := r.transact(out, plans)
	r.lastEnd = r.cfg.Now()
	if err != nil {
		return fmt.Errorf("stage %s: transactions are stuck: %w", r.cfg.Name, err)
	}
	if !committed {
		r.stats.Aborted.Add(1)
		r.log.Info("transaction aborted; records will be processed again")
		r.reset()
		return nil
	}
	r.stats.Committed.Add(1)
	r.doneHeld = 0
	for _, fp := range plans {
		for _, it := range fp.keep {
			if it.done {
				r.doneHeld++
			}
		}
		p := fp.p
		for _, it := range fp.flushed {
			p.sched.release(it.size)
		}
		p.items, p.done = fp.keep, fp.done
		p.side = nil
		p.committedMark, p.committedDone = fp.mark, fp.done.clone()
		p.outNext = outNext[p.id]
		for o := range p.handed {
			if o < fp.mark || fp.done.contains(o) {
				delete(p.handed, o)
			}
		}
		r.stats.Processed.Add(int64(len(fp.flushed)))
	}
	return nil
}

// transact produces the successors and commits offsets and done sets in one
// transaction. It reports whether the transaction committed, and the
// outputs' offsets it recorded per partition; an error means the outcome is
// unknown or the session is unusable, and the stage must stop.
func (r *Runner) transact(out []*kgo.Record, plans map[int32]flushPlan) (bool, map[int32][]int64, error) {
	if err := r.sess.Begin(); err != nil {
		return false, nil, fmt.Errorf("begin transaction: %w", err)
	}
	// Each partition's outputs' offsets start from its last commit and move
	// past every successor this transaction produces.
	outNext := make(map[int32][]int64, len(plans))
	for id, fp := range plans {
		if len(r.cfg.Outputs) > 0 {
			outNext[id] = append([]int64(nil), fp.p.outNext...)
		}
	}
	// Produces may wait out a leader election (a broker failover takes
	// seconds), so they get their own deadline, and End always a fresh one:
	// End with an expired context returns without ending the transaction.
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
	defer cancel()
	var (
		mu      sync.Mutex
		prodErr error
	)
	for _, rec := range out {
		r.sess.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				prodErr = fmt.Errorf("produce to %s[%d]: %w", rec.Topic, rec.Partition, err)
				return
			}
			i, ok := r.outIndex[rec.Topic]
			if next := outNext[rec.Partition]; ok && i < len(next) && rec.Offset+1 > next[i] {
				next[i] = rec.Offset + 1
			}
		})
	}
	if err := r.sess.Client().Flush(ctx); err != nil {
		prodErr = errors.Join(prodErr, err)
	}
	try := kgo.TryCommit
	if prodErr != nil {
		try = kgo.TryAbort
		r.log.Warn("produce failed; aborting the transaction", "err", prodErr)
	}
	endCtx, cancelEnd := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
	defer cancelEnd()
	// kgo would commit the polled position; commit the watermark and the
	// done set instead, so a record polled but not finished is never skipped.
	endCtx = kgo.PreTxnCommitFnContext(endCtx, func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			if t.Topic != r.cfg.Topic {
				continue
			}
			for j := range t.Partitions {
				pt := &t.Partitions[j]
				fp, ok := plans[pt.Partition]
				if !ok {
					continue
				}
				mu.Lock()
				meta := commitMeta{done: fp.done, outNext: outNext[pt.Partition]}.encode(fp.mark, r.outputsID)
				mu.Unlock()
				pt.Offset, pt.LeaderEpoch, pt.Metadata = fp.mark, fp.p.epoch, &meta
			}
		}
		return nil
	})
	committed, err := r.sess.End(endCtx, try)
	if err != nil {
		// The commit may or may not have happened: the client's idea of the
		// committed offsets may be wrong either way, and processing on from
		// it could repeat committed hand-offs. Release the transaction and
		// stop the stage; a restarted process reads the true committed
		// offsets and done sets from the broker.
		r.log.Error("end transaction failed; its outcome is unknown, stopping the stage", "err", err)
		return false, nil, errors.Join(fmt.Errorf("end transaction: %w", err), r.abortOpen())
	}
	return committed && prodErr == nil, outNext, nil
}

// abortOpen ends a transaction that End left open, retrying while the
// cluster recovers. If it cannot, the session is stuck: the caller stops the
// stage so that the process restarts and fences it.
func (r *Runner) abortOpen() error {
	b := backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(2 * time.Minute))
	return backoff.RetryNotify(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
		defer cancel()
		_, err := r.sess.End(ctx, kgo.TryAbort)
		return err
	}, b, func(err error, wait time.Duration) {
		r.log.Warn("abort transaction, retrying", "err", err, "retry_in", wait)
	})
}

// reset forgets every record held: after an abort kgo rewinds to the
// committed offsets and fetches them again, and each partition starts over
// from its last committed done set. Paused partitions are resumed so the
// refetch is not stuck.
func (r *Runner) reset() {
	var resume []int32
	for id, p := range r.parts {
		r.inflight -= p.sched.running
		if p.paused {
			resume = append(resume, id)
		}
		r.seeds[id] = &partitionStart{done: p.committedDone, outNext: p.outNext, handed: p.handed}
	}
	r.parts = make(map[int32]*partition)
	r.doneHeld = 0
	if len(resume) > 0 {
		r.sess.Client().ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}
