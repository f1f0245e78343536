package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// state is the relay's position: the record it writes to the state topic in
// the same transaction as each batch, naming the seqs of that batch. At most
// one batch is ever between its commit and the delete of its rows, so the
// last committed state record is all a new relay needs.
type state struct {
	V     int     `json:"v"`
	Table string  `json:"table"`
	Batch int64   `json:"batch"`
	Seqs  []int64 `json:"seqs"`
}

// The state topic keeps its newest records: size-based retention never
// removes the active segment, which holds the last one.
var stateTopicConfigs = map[string]*string{
	"cleanup.policy":  ptr("delete"),
	"retention.ms":    ptr("-1"),
	"retention.bytes": ptr("16777216"),
	"segment.bytes":   ptr("1048576"),
}

func ptr(s string) *string { return &s }

func (r *Relay) ensureStateTopic(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	rf := int16(r.cfg.ReplicationFactor)
	if r.cfg.ReplicationFactor == 0 {
		rf = -1
	}
	res, err := adm.CreateTopic(ctx, 1, rf, stateTopicConfigs, r.cfg.StateTopic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create state topic %s: %w", r.cfg.StateTopic, err)
	}
	return nil
}

// stateReadTimeout bounds the read of the state topic's tail.
const stateReadTimeout = 30 * time.Second

// lastState reads the newest committed state record of the table. The
// read goes back from the last stable offset in growing windows: aborted
// transactions (a crashed relay's) leave records a read_committed fetch
// skips, so the newest committed one can be further back than the last.
func (r *Relay) lastState(ctx context.Context, cl *kgo.Client) (state, error) {
	ctx, cancel := context.WithTimeout(ctx, stateReadTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, r.cfg.StateTopic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return state{}, fmt.Errorf("list start offset of %s: %w", r.cfg.StateTopic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, r.cfg.StateTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return state{}, fmt.Errorf("list last stable offset of %s: %w", r.cfg.StateTopic, err)
	}
	so, _ := starts.Lookup(r.cfg.StateTopic, 0)
	eo, _ := ends.Lookup(r.cfg.StateTopic, 0)
	start, end := so.Offset, eo.Offset
	for window := int64(16); ; window *= 8 {
		from := max(start, end-window)
		st, found, err := r.readStates(ctx, from, end)
		if err != nil || found || from == start {
			return st, err
		}
	}
}

// readStates reads [from, end) of the state topic, control records
// included so that it knows when it reached end, and returns the newest
// state record of the table in it.
func (r *Relay) readStates(ctx context.Context, from, end int64) (state, bool, error) {
	if from >= end {
		return state{}, false, nil
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt{}, r.cfg.KafkaOpts...),
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.StateTopic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return state{}, false, err
	}
	defer rd.Close()
	var last state
	found := false
	for {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return state{}, false, fmt.Errorf("read state topic %s to offset %d: %w", r.cfg.StateTopic, end, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return state{}, false, fmt.Errorf("read state topic %s: %w", r.cfg.StateTopic, ferr)
		}
		done := false
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= end || done {
				done = true
				return
			}
			if rec.Offset == end-1 {
				done = true
			}
			if rec.Attrs.IsControl() || string(rec.Key) != r.cfg.Table {
				return
			}
			var st state
			if err := json.Unmarshal(rec.Value, &st); err != nil || st.V != 1 {
				ferr = fmt.Errorf("state record at offset %d of %s is not a relay state: %s", rec.Offset, r.cfg.StateTopic, rec.Value)
				return
			}
			last, found = st, true
		})
		if ferr != nil {
			return state{}, false, ferr
		}
		if done {
			return last, found, nil
		}
	}
}
