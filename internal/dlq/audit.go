package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// AuditVersion is the version of the audit record format.
const AuditVersion = 1

// Outcome is where a replay stands.
type Outcome string

// Outcomes of a replay.
const (
	// OutcomeRunning: a run is under way, or was killed without a word;
	// running the replay again resumes it.
	OutcomeRunning Outcome = "running"
	// OutcomeCompleted: every matching record up to the DLQ's end as of
	// the first run was sent.
	OutcomeCompleted Outcome = "completed"
	// OutcomeInterrupted: a run was stopped (signal, timeout); running
	// the replay again resumes it.
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeFailed: a run stopped on an error; running the replay again
	// resumes it.
	OutcomeFailed Outcome = "failed"
)

// Audit record kinds.
const (
	KindStarted  = "started"
	KindResumed  = "resumed"
	KindProgress = "progress"
	KindFinished = "finished"
)

// AuditRecord is one record of the audit topic, keyed by replay id. Each
// is self-contained: the latest record of a replay is its whole state,
// including how far it got, so resuming needs nothing else.
type AuditRecord struct {
	V        int    `json:"v"`
	ReplayID string `json:"replay_id"`
	// Kind is started, resumed, progress or finished.
	Kind string `json:"kind"`
	// Operator ran the run that wrote this record, by the name they gave
	// (--operator, default $USER): self-declared, not authenticated.
	Operator string `json:"operator"`
	// KafkaUser is the SASL user that run authenticated to Kafka as, when
	// SASL was configured: the identity the brokers checked.
	KafkaUser string `json:"kafka_user,omitempty"`
	// StartedAt is when the replay's first run started; At is when this
	// record was written.
	StartedAt time.Time `json:"started_at"`
	At        time.Time `json:"at"`
	Target    Target    `json:"target"`
	// Topic is the topic replayed into.
	Topic    string  `json:"topic"`
	DLQTopic string  `json:"dlq_topic"`
	Filter   Filter  `json:"filter"`
	Rate     float64 `json:"rate,omitempty"`
	// Ends are the DLQ end offsets as of the first run: a replay never
	// goes past them, so pairs that fail again after their replay are not
	// replayed a second time by a resumed run.
	Ends map[int32]int64 `json:"dlq_end_offsets"`
	// Next are, per DLQ partition, the offset the replay reads next: all
	// before it was sent or skipped, in a committed transaction.
	Next map[int32]int64 `json:"dlq_next_offsets"`
	// Counts over every run. Matched includes Skipped: records that
	// matched but could not be replayed to the target.
	Scanned int64   `json:"scanned"`
	Matched int64   `json:"matched"`
	Sent    int64   `json:"sent"`
	Skipped int64   `json:"skipped"`
	Runs    int     `json:"runs"`
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
}

// Remaining is how many DLQ records the replay has left to read.
func (a *AuditRecord) Remaining() int64 {
	var n int64
	for p, end := range a.Ends {
		if next := a.Next[p]; next < end {
			n += end - next
		}
	}
	return n
}

// clone copies a with maps of its own.
func (a AuditRecord) clone() AuditRecord {
	a.Ends, a.Next = maps.Clone(a.Ends), maps.Clone(a.Next)
	return a
}

func (a AuditRecord) record(topic string) (*kgo.Record, error) {
	a.V = AuditVersion
	v, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode audit record of replay %s: %w", a.ReplayID, err)
	}
	return &kgo.Record{Topic: topic, Partition: 0, Key: []byte(a.ReplayID), Value: v}, nil
}

func decodeAudit(r *kgo.Record) (AuditRecord, error) {
	var a AuditRecord
	if err := json.Unmarshal(r.Value, &a); err != nil {
		return AuditRecord{}, fmt.Errorf("audit record at %d:%d: %w", r.Partition, r.Offset, err)
	}
	if a.V < 1 || a.V > AuditVersion {
		return AuditRecord{}, fmt.Errorf("audit record at %d:%d: unsupported version %d", r.Partition, r.Offset, a.V)
	}
	return a, nil
}

// readAudit streams every committed audit record to fn. A missing audit
// topic holds no records.
func (c *Client) readAudit(ctx context.Context, fn func(AuditRecord) error) error {
	topic := c.cfg.Topics.Audit
	spans, err := c.bounds(ctx, topic)
	if errors.Is(err, ErrNoTopic) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.read(ctx, topic, spans, func(r *kgo.Record) error {
		a, err := decodeAudit(r)
		if err != nil {
			c.cfg.Logger.Warn("skipping unreadable audit record", "err", err)
			return nil
		}
		return fn(a)
	})
}

// replayState returns the latest audit record of replay id, or nil.
func (c *Client) replayState(ctx context.Context, id string) (*AuditRecord, error) {
	var last *AuditRecord
	err := c.readAudit(ctx, func(a AuditRecord) error {
		if a.ReplayID == id {
			last = &a
		}
		return nil
	})
	return last, err
}

// ReplaySummary is one replay as `dlq replays` lists it.
type ReplaySummary struct {
	// Latest is the replay's latest audit record: its state.
	Latest AuditRecord `json:"latest"`
	// Runs are its started, resumed and finished records, in order.
	Runs []AuditRecord `json:"runs"`
}

// Replays lists every replay in the audit topic, oldest first.
func (c *Client) Replays(ctx context.Context) ([]ReplaySummary, error) {
	byID := map[string]*ReplaySummary{}
	var order []string
	err := c.readAudit(ctx, func(a AuditRecord) error {
		s, ok := byID[a.ReplayID]
		if !ok {
			s = &ReplaySummary{}
			byID[a.ReplayID] = s
			order = append(order, a.ReplayID)
		}
		s.Latest = a
		if a.Kind != KindProgress {
			s.Runs = append(s.Runs, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ReplaySummary, len(order))
	for i, id := range order {
		out[i] = *byID[id]
	}
	slices.SortStableFunc(out, func(a, b ReplaySummary) int { return a.Latest.StartedAt.Compare(b.Latest.StartedAt) })
	return out, nil
}

// ensureAudit creates the audit topic when it does not exist yet (a serve
// that provisioned before the topic was added to topics.Set), with the
// settings topics.Set.Provision gives it.
func (c *Client) ensureAudit(ctx context.Context) error {
	topic := c.cfg.Topics.Audit
	if _, err := c.bounds(ctx, topic); !errors.Is(err, ErrNoTopic) {
		return err
	}
	keep := "-1"
	resp, err := c.adm.CreateTopic(ctx, 1, c.cfg.Topics.Replication,
		map[string]*string{"retention.ms": &keep, "retention.bytes": &keep}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create audit topic %s: %w", topic, err)
	}
	// Metadata can lag a create.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.bounds(ctx, topic)
		if !errors.Is(err, ErrNoTopic) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
