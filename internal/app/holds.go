package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/topics"
)

// readTimeout bounds reading a topic to its last stable offset.
const readTimeout = 30 * time.Second

// readToStable reads partitions ps of a topic from their start to their
// last stable offset (read_committed), as the strict stage loads its holds
// on assignment, and returns their records by partition in offset order.
func readToStable(ctx context.Context, opts []kgo.Opt, topic string, ps []int32) (map[int32][]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list last stable offsets of %s: %w", topic, err)
	}
	out := make(map[int32][]*kgo.Record, len(ps))
	stop := make(map[int32]int64)
	read := make(map[int32]kgo.Offset)
	for _, p := range ps {
		out[p] = nil
		if o, ok := ends.Lookup(topic, p); ok && o.Offset > 0 {
			stop[p], read[p] = o.Offset, kgo.NewOffset().AtStart()
		}
	}
	if len(read) == 0 {
		return out, nil
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: read}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	// Done at a record at the last stable offset - 1, or when two polls in
	// a row bring nothing (compaction and aborted records leave gaps).
	for idle := 0; len(stop) > 0 && idle < 2; {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := rd.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, fmt.Errorf("read %s[%d]: %w", t, p, err))
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		idle++
		fs.EachRecord(func(rec *kgo.Record) {
			to, ok := stop[rec.Partition]
			if !ok || rec.Offset >= to {
				return
			}
			idle = 0
			if rec.Offset+1 >= to {
				delete(stop, rec.Partition)
			}
			if !rec.Attrs.IsControl() {
				out[rec.Partition] = append(out[rec.Partition], rec)
			}
		})
	}
	return out, nil
}

// ReadHolds reads every held pair of the strict stage from the holds
// topic, as committed: what `hookline dlq held` and the endpoint API show,
// whichever process owns the partitions. opts carry the connection.
func ReadHolds(ctx context.Context, opts []kgo.Opt, set topics.Set) ([]processors.HeldKey, error) {
	ps := make([]int32, set.Partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	recs, err := readToStable(ctx, opts, set.Holds, ps)
	if err != nil {
		return nil, err
	}
	t := processors.NewHolds()
	for p, rs := range recs {
		if err := t.Load(p, rs); err != nil {
			return nil, err
		}
	}
	return t.List(), nil
}

// holdsFollower applies the releases operators write to the holds topic
// (hookline dlq replay or skip of a held event) to the strict stage's table.
type holdsFollower struct {
	rd    *kgo.Client
	holds *processors.Holds
	log   *slog.Logger
}

// followHolds prepares a holdsFollower that reads from the topic's last
// stable offsets as of its call, before any stage is assigned: what came
// before, each assignment reads (Holds.Load), and what comes after, the
// follower applies once it runs.
func followHolds(ctx context.Context, opts []kgo.Opt, topic string, holds *processors.Holds, log *slog.Logger) (*holdsFollower, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	cl.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list last stable offsets of %s: %w", topic, err)
	}
	from := make(map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return nil, err
	}
	return &holdsFollower{rd: rd, holds: holds, log: log}, nil
}

// run applies releases until ctx ends, then closes the follower's client.
func (f *holdsFollower) run(ctx context.Context) {
	defer f.rd.Close()
	for ctx.Err() == nil {
		fs := f.rd.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				f.log.Warn("follow held keys' releases", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				return
			}
			if h, err := processors.DecodeHold(r.Value); err == nil {
				f.holds.Apply(r.Partition, r.Key, h)
			}
		})
	}
}
