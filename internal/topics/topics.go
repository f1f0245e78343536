// Package topics owns hookline's Kafka topics: their names, the retry tiers,
// partition counts, per-topic configs, and provisioning them with kadm.
//
// The delivery chain is events -> retry.<delay>... -> dlq, with attempts
// beside it. All of them have the same partition count, because a record
// moves to the same partition number in the next topic, so a key never
// changes owner. The endpoints registry is one compacted partition, so that
// it is totally ordered. The audit topic (one partition, kept forever)
// records every DLQ replay and its progress. The operational topic carries
// operational events (package operational) to operators: endpoint disabled,
// failing, recovered, a pair exhausted, a replay finished.
package topics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Tier is one retry tier.
type Tier struct {
	// Name is "retry.<delay>" with the unscaled delay, e.g. "retry.30s".
	Name string
	// Topic is the prefixed topic name.
	Topic string
	// Delay is how long a record waits in this tier, already scaled.
	Delay time.Duration
}

// Set is the topics of one hookline deployment.
type Set struct {
	Prefix    string
	Events    string
	DLQ       string
	Attempts  string
	Endpoints string
	// Audit records DLQ replays: who, when, what, how far (package dlq).
	Audit string
	// Park carries the events of strict endpoints (endpoints.OrderingStrict)
	// to the strict stage, in the order they arrived; Holds is the durable
	// state of the (endpoint, ordering key) pairs that stage holds, key
	// "endpoint\x00ordering key", a tombstone releases one. Both are
	// chain topics: the strict stage of partition p owns holds[p].
	Park  string
	Holds string
	// Operational carries operational events; it has Partitions
	// partitions, because a stage writes an event in the partition number
	// of the record that caused it, in that record's transaction.
	Operational string
	Tiers       []Tier
	// Partitions of events, every tier, the DLQ and attempts.
	Partitions int32
	// Replication of created topics; -1 is the broker default.
	Replication int16
}

// Retention of the topics, as topic configs.
const (
	// EventsRetention bounds how long an event stays in the events topic.
	// A week covers a long outage of every hookline process.
	EventsRetention = 7 * 24 * time.Hour
	// AttemptsRetention is how long attempt records wait for the ClickHouse
	// sink: a week of ClickHouse outage loses no row. ClickHouse is the
	// long-term store.
	AttemptsRetention = 7 * 24 * time.Hour
	// TierRetentionExtra is added to a tier's delay: a record is never
	// deleted before it is due plus a week of outage.
	TierRetentionExtra = 7 * 24 * time.Hour
	// OperationalRetention is how long an operational event waits for the
	// operator webhook: past it, an event not yet forwarded is lost.
	OperationalRetention = 7 * 24 * time.Hour
)

// TierName names the tier of delay d: "retry." and d without trailing zero
// units, e.g. 30s -> retry.30s, 2m -> retry.2m, 1h -> retry.1h,
// 90s -> retry.1m30s.
func TierName(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return "retry." + s
}

// New returns the topic set. delays are the configured, unscaled tier
// delays, which name the tier topics; scale multiplies them into
// Tier.Delay, so that a demo can run the same topology faster.
func New(prefix string, delays []time.Duration, scale float64, partitions int32, replication int16) Set {
	s := Set{
		Prefix:      prefix,
		Events:      prefix + "events",
		DLQ:         prefix + "dlq",
		Attempts:    prefix + "attempts",
		Endpoints:   prefix + "endpoints",
		Audit:       prefix + "audit",
		Park:        prefix + "park",
		Holds:       prefix + "holds",
		Operational: prefix + "operational",
		Partitions:  partitions,
		Replication: replication,
	}
	for _, d := range delays {
		name := TierName(d)
		s.Tiers = append(s.Tiers, Tier{
			Name:  name,
			Topic: prefix + name,
			Delay: time.Duration(math.Round(float64(d) * scale)),
		})
	}
	return s
}

// All returns the topics of delivery, its registry, its audit trail and
// strict ordering: events, the tiers in order, dlq, attempts, endpoints,
// audit, park and holds. Provisioned returns them with the operational
// topic.
func (s Set) All() []string {
	all := []string{s.Events}
	for _, t := range s.Tiers {
		all = append(all, t.Topic)
	}
	return append(all, s.DLQ, s.Attempts, s.Endpoints, s.Audit, s.Park, s.Holds)
}

// Provisioned returns every topic Provision creates: All and the
// operational topic.
func (s Set) Provisioned() []string { return append(s.All(), s.Operational) }

// TierIndex returns the index in Tiers of the tier whose topic is topic, or
// -1 when topic is not a tier topic.
func (s Set) TierIndex(topic string) int {
	for i, t := range s.Tiers {
		if t.Topic == topic {
			return i
		}
	}
	return -1
}

// spec is how one topic is created and what an existing one must match.
type spec struct {
	topic      string
	partitions int32
	configs    map[string]*string
	// chain topics must have exactly Partitions partitions.
	chain bool
}

func ms(d time.Duration) *string {
	v := strconv.FormatInt(d.Milliseconds(), 10)
	return &v
}

func ptr(s string) *string { return &s }

func (s Set) specs() []spec {
	specs := []spec{{
		topic:      s.Events,
		partitions: s.Partitions,
		configs:    map[string]*string{"retention.ms": ms(EventsRetention)},
		chain:      true,
	}}
	for _, t := range s.Tiers {
		specs = append(specs, spec{
			topic:      t.Topic,
			partitions: s.Partitions,
			configs:    map[string]*string{"retention.ms": ms(t.Delay + TierRetentionExtra)},
			chain:      true,
		})
	}
	return append(specs,
		// The DLQ keeps everything until an operator re-drives or
		// purges it: a time-based deletion would silently lose events
		// that were accepted and never delivered.
		spec{
			topic:      s.DLQ,
			partitions: s.Partitions,
			configs:    map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("-1")},
			chain:      true,
		},
		spec{
			topic:      s.Attempts,
			partitions: s.Partitions,
			configs:    map[string]*string{"retention.ms": ms(AttemptsRetention)},
			chain:      true,
		},
		// The endpoint registry: the latest record per endpoint id is
		// its state, a tombstone deletes it. One partition keeps every
		// change in one total order.
		spec{
			topic:      s.Endpoints,
			partitions: 1,
			configs:    map[string]*string{"cleanup.policy": ptr("compact")},
		},
		// Parked events wait at most the sum of the tier delays for the
		// event that holds their key, plus a week of outage.
		spec{
			topic:      s.Park,
			partitions: s.Partitions,
			configs:    map[string]*string{"retention.ms": ms(s.parkRetention())},
			chain:      true,
		},
		// The latest record per held pair is its state.
		spec{
			topic:      s.Holds,
			partitions: s.Partitions,
			configs:    map[string]*string{"cleanup.policy": ptr("compact")},
			chain:      true,
		},
		// The replay audit trail is kept until an operator deletes it;
		// one partition keeps a replay's records in order.
		spec{
			topic:      s.Audit,
			partitions: 1,
			configs:    map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("-1")},
		},
		// Operational events wait here for the operator webhook as
		// long as events wait for their endpoints.
		spec{
			topic:      s.Operational,
			partitions: s.Partitions,
			configs:    map[string]*string{"retention.ms": ms(OperationalRetention)},
			chain:      true,
		},
	)
}

func (s Set) parkRetention() time.Duration {
	d := EventsRetention
	for _, t := range s.Tiers {
		d += t.Delay
	}
	return d
}

// ErrPartitionMismatch is wrapped by Provision's error when an existing
// topic has the wrong number of partitions.
var ErrPartitionMismatch = errors.New("partition count mismatch")

// Provision creates the topics that do not exist and checks the ones that
// do. It is safe to run from several processes at once. An existing chain
// topic (events, a tier, dlq, attempts) with a partition count other than
// Partitions is an error, as is an endpoints topic with more than one
// partition: hookline would silently break per-key order on either.
// Provision does not change the configs of existing topics.
func (s Set) Provision(ctx context.Context, adm *kadm.Client) error {
	specs := s.specs()
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.topic
	}
	existing, err := listFresh(ctx, adm, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	// Check every existing topic before creating any, so that a
	// mismatch leaves the cluster as it was.
	var missing []spec
	for _, sp := range specs {
		d, ok := existing[sp.topic]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, sp)
		case d.Err != nil:
			return fmt.Errorf("describe topic %s: %w", sp.topic, d.Err)
		default:
			if err := s.check(sp, int32(len(d.Partitions))); err != nil {
				return err
			}
		}
	}
	for _, sp := range missing {
		if err := s.create(ctx, adm, sp); err != nil {
			return err
		}
	}
	return nil
}

func (s Set) create(ctx context.Context, adm *kadm.Client, sp spec) error {
	resp, err := adm.CreateTopic(ctx, sp.partitions, s.Replication, sp.configs, sp.topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Another process created it between our list and create.
		// Its partition count is still ours to check.
		n, err := partitionCount(ctx, adm, sp.topic)
		if err != nil {
			return err
		}
		return s.check(sp, n)
	default:
		if resp.ErrMessage != "" {
			return fmt.Errorf("create topic %s: %w: %s", sp.topic, err, resp.ErrMessage)
		}
		return fmt.Errorf("create topic %s: %w", sp.topic, err)
	}
}

// partitionCount reads the partition count of a topic that the broker says
// exists. Metadata can lag a create on a multi-broker cluster, so an
// unknown topic is asked again, a few times, before giving up.
func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ds, err := listFresh(ctx, adm, topic)
		if err != nil {
			return 0, fmt.Errorf("list topic %s: %w", topic, err)
		}
		d := ds[topic]
		if d.Err == nil && len(d.Partitions) > 0 {
			return int32(len(d.Partitions)), nil
		}
		if d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("describe topic %s: %w", topic, d.Err)
		}
		if attempt == 5 {
			return 0, fmt.Errorf("topic %s exists but its metadata does not show it", topic)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("describe topic %s: %w", topic, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// listFresh lists topics from a fresh metadata request. kadm answers
// ListTopics from kgo's metadata cache, which can hold an answer (even
// "unknown topic") for up to MetadataMinAge, 5s by default; asking for
// authorized operations makes kadm bypass that cache.
func listFresh(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.TopicDetails, error) {
	return adm.ListTopics(kadm.WithAuthorizedOps(ctx), topics...)
}

func (s Set) check(sp spec, have int32) error {
	switch {
	case have == sp.partitions:
		return nil
	case sp.topic == s.Events:
		return fmt.Errorf("topic %s has %d partitions, want %d: set partitions to match it or use another topic_prefix: %w",
			sp.topic, have, sp.partitions, ErrPartitionMismatch)
	case sp.chain:
		return fmt.Errorf("topic %s has %d partitions, want %d: retry tiers and the DLQ must match the events topic: %w",
			sp.topic, have, sp.partitions, ErrPartitionMismatch)
	case sp.topic == s.Audit:
		return fmt.Errorf("topic %s has %d partitions, want %d: the replay audit trail must be totally ordered: %w",
			sp.topic, have, sp.partitions, ErrPartitionMismatch)
	default:
		return fmt.Errorf("topic %s has %d partitions, want %d: the endpoint registry must be totally ordered: %w",
			sp.topic, have, sp.partitions, ErrPartitionMismatch)
	}
}
