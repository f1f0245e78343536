package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderSource is stamped on every record a stage produces: the record it
// was produced from, as "topic/partition/offset".
const HeaderSource = "hookline-source"

// Bounds of the hand-off audit a new owner runs on assignment.
const (
	auditTimeout    = 30 * time.Second
	auditMaxRecords = 1_000_000
)

// sourceOf is the HeaderSource value of r's outputs: topic/partition/offset,
// which parseSource reads. It is built in one allocation: every output
// record of every task carries it.
func sourceOf(r *kgo.Record) []byte {
	b := make([]byte, 0, len(r.Topic)+32)
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, r.Offset, 10)
}

// parseSource reads a HeaderSource value (Kafka topic names have no "/").
func parseSource(v string) (topic string, partition int32, offset int64, ok bool) {
	f := strings.Split(v, "/")
	if len(f) != 3 {
		return "", 0, 0, false
	}
	p, err1 := strconv.ParseInt(f[1], 10, 32)
	o, err2 := strconv.ParseInt(f[2], 10, 64)
	return f[0], int32(p), o, err1 == nil && err2 == nil
}

// outputsID names a list of output topics in the commit metadata.
func outputsID(outputs []string) uint32 {
	h := fnv.New32a()
	for _, o := range outputs {
		h.Write([]byte(o))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

// partitionStart is what a newly assigned partition starts from.
type partitionStart struct {
	done doneSet
	// outNext are the outputs' offsets to record in the next commit
	// (RunnerConfig.Outputs order; nil when there are no outputs).
	outNext []int64
	// handed are successors already committed, by source offset.
	handed map[int64][]*kgo.Record
}

// audit finds, for newly assigned partitions, successors that are committed
// although their source records are not (neither below the committed offset
// nor in the done set). On Apache Kafka a transaction commits its records and
// its offsets atomically and audit would find nothing; the embedded broker
// can tear a transaction when its process is killed. It runs only for a
// stage configured with Outputs (the app sets them for the embedded broker
// only). Each output partition is
// read from the offset recorded at the last commit to its last stable
// offset, and only when the source partition has records left to process,
// so an assignment normally reads nothing.
//
// It fills in starts[p].handed and, where the metadata had no output
// offsets, starts[p].outNext with the outputs' current last stable offsets.
func (r *Runner) audit(ctx context.Context, cl *kgo.Client, starts map[int32]*partitionStart, marks map[int32]int64) error {
	outs := r.cfg.Outputs
	if len(outs) == 0 || len(starts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, append([]string{r.cfg.Topic}, outs...)...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list last stable offsets: %w", err)
	}
	end := func(topic string, p int32) int64 {
		o, ok := ends.Lookup(topic, p)
		if !ok {
			return -1
		}
		return o.Offset
	}
	// What to read: output partition -> from, to; and which source
	// offsets are open.
	read := make(map[string]map[int32]kgo.Offset)
	stop := make(map[string]map[int32]int64)
	for p, st := range starts {
		if len(st.outNext) != len(outs) {
			st.outNext = make([]int64, len(outs))
			for i := range st.outNext {
				st.outNext[i] = -1
			}
		}
		open := marks[p] < end(r.cfg.Topic, p)
		r.log.Debug("hand-off audit: assigned", "partition", p, "mark", marks[p],
			"source_end", end(r.cfg.Topic, p), "outputs", outs, "out_next", st.outNext,
			"out_ends", endsOf(outs, p, end))
		for i, t := range outs {
			last := end(t, p)
			from := st.outNext[i]
			if from < 0 {
				// Nothing recorded: from here on, this owner's commits
				// record where its successors end.
				st.outNext[i] = last
				continue
			}
			if !open || from >= last {
				continue
			}
			if read[t] == nil {
				read[t], stop[t] = make(map[int32]kgo.Offset), make(map[int32]int64)
			}
			read[t][p], stop[t][p] = kgo.NewOffset().At(from), last
		}
	}
	if len(read) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, r.cfg.ClientOpts...),
		kgo.ConsumePartitions(read),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Markers are kept so that the read sees every offset up to the
		// last stable one.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return err
	}
	defer rd.Close()
	left, n, idle := 0, 0, 0
	for _, ps := range stop {
		left += len(ps)
	}
	// A partition is read to its end when a record at its last stable
	// offset - 1 comes, or when nothing comes for two polls in a row (a
	// record just below the last stable offset can be an aborted one, which
	// a read_committed fetch leaves out).
	for left > 0 && idle < 2 {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := rd.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read outputs: %w", err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, fmt.Errorf("read %s[%d]: %w", t, p, err))
			}
		})
		if ferr != nil {
			return ferr
		}
		idle++
		fs.EachRecord(func(rec *kgo.Record) {
			to, ok := stop[rec.Topic][rec.Partition]
			if !ok || rec.Offset >= to {
				return
			}
			idle = 0
			if rec.Offset+1 >= to {
				delete(stop[rec.Topic], rec.Partition)
				left--
			}
			n++
			if rec.Attrs.IsControl() {
				return
			}
			r.noteHandedOff(starts[rec.Partition], marks[rec.Partition], rec)
		})
		if n > auditMaxRecords {
			return fmt.Errorf("read outputs: more than %d records to read", auditMaxRecords)
		}
	}
	r.log.Debug("hand-off audit: read", "records", n, "unfinished", stop, "idle_polls", idle)
	return nil
}

// endsOf lists the last stable offsets of partition p of the outputs, for
// the audit's debug log.
func endsOf(outs []string, p int32, end func(string, int32) int64) []int64 {
	es := make([]int64, len(outs))
	for i, t := range outs {
		es[i] = end(t, p)
	}
	return es
}

// noteHandedOff records out as handed off when it was produced from an open
// record of the partition st starts (at or above mark, not done).
func (r *Runner) noteHandedOff(st *partitionStart, mark int64, out *kgo.Record) {
	src, found := lastSource(out)
	if !found {
		return
	}
	topic, p, o, ok := parseSource(src)
	if !ok || topic != r.cfg.Topic || p != out.Partition || o < mark || st.done.contains(o) {
		if ok && topic == r.cfg.Topic && o >= mark {
			r.log.Debug("hand-off audit: output not handed off", "output", out.Topic, "partition", out.Partition,
				"offset", out.Offset, "source_partition", p, "source_offset", o, "mark", mark, "done", st.done.contains(o))
		}
		return
	}
	r.log.Debug("hand-off audit: handed off", "output", out.Topic, "partition", out.Partition,
		"offset", out.Offset, "source_offset", o)
	if st.handed == nil {
		st.handed = make(map[int64][]*kgo.Record)
	}
	st.handed[o] = append(st.handed[o], out)
}

// lastSource is the HeaderSource value the stage that produced r stamped on
// it: the last one. A successor that keeps the headers of the record it
// comes from (a tier record does) carries its ancestors' sources before it.
func lastSource(r *kgo.Record) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == HeaderSource {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}
