package pipeline

import (
	"github.com/twmb/franz-go/pkg/kgo"
)

// A partition's read-ahead window: the records polled and not yet committed,
// which its scheduler starts and its commits take out.

type item struct {
	rec    *kgo.Record
	size   int64         // in the window
	handed []*kgo.Record // see Stage
	// lanes are the record's independent deliveries, each a task; outs
	// their successors, pending how many have not completed. The record is
	// done when all have.
	lanes   []string
	outs    [][]*kgo.Record
	pending int
	done    bool
	out     []*kgo.Record
}

type partition struct {
	id    int32
	items []*item // polled, successors not yet committed; offset order
	sched *scheduler
	// paused is whether the loop paused fetching the partition.
	paused bool

	next  int64   // the offset after the last polled record
	epoch int32   // leader epoch of the last polled record
	done  doneSet // offsets above the watermark whose successors are committed

	committedMark int64
	committedDone doneSet
	// outNext are the outputs' offsets after the last committed successor
	// (recorded in the commit metadata); handed are successors committed
	// by a torn transaction, by source offset (see Stage).
	outNext []int64
	handed  map[int64][]*kgo.Record
	// side are records of deferred tasks (see Deferred), committed with the
	// next transaction without their records' offsets.
	side []*kgo.Record
}

// watermark is the offset to commit: the first record whose successors are
// not committed yet.
func (p *partition) watermark() int64 {
	if len(p.items) > 0 {
		return p.items[0].rec.Offset
	}
	return p.next
}

func (r *Runner) newPartition(first *kgo.Record) *partition {
	st := r.seeds[first.Partition]
	delete(r.seeds, first.Partition)
	if st == nil {
		st = &partitionStart{}
	}
	p := &partition{
		id: first.Partition,
		sched: newScheduler(Limits{
			Concurrency: r.cfg.Concurrency,
			MaxRecords:  r.cfg.MaxInFlight,
			MaxBytes:    r.cfg.MaxInFlightBytes,
		}),
		next: first.Offset, committedMark: first.Offset,
		done: st.done.clone(), committedDone: st.done,
		outNext: st.outNext, handed: st.handed,
	}
	r.parts[first.Partition] = p
	return p
}
