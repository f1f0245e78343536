package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RunnerConfig configures one stage runner.
type RunnerConfig struct {
	// Name is the stage name used in logs and metrics: "events" or a tier name.
	Name  string
	Topic string
	Group string
	// TransactionalID must be unique per process and stage.
	TransactionalID string
	// ClientOpts carry the connection options (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	Stage      Stage
	// Outputs turn on the hand-off audit: they are the topics the stage
	// hands records on to (next tier, DLQ), each in the partition number of
	// the record consumed. A new owner of a partition reads them for
	// successors a crash left committed without their offsets, and passes
	// those to Stage.Process as handedOff. Only a broker that can tear a
	// transaction needs it (the embedded one); on Apache Kafka leave Outputs
	// empty, and no audit runs. Attempt records are not outputs: one does
	// not mean its record moved on.
	Outputs []string
	// Due returns when a record may be processed; nil means at once.
	Due func(*kgo.Record) (time.Time, bool)
	// Lanes splits a record into independent deliveries before it is
	// processed (nil or none: one lane, ""). Each lane is processed on its
	// own (the stage reads it with Lane) and scheduled under the key (lane,
	// record key), so lanes of one record do not wait for each other and a
	// lane waits only for the same lane of earlier records of its key. The
	// record completes when all its lanes have; their successors, in lane
	// order, commit together in one transaction, as one record's would.
	Lanes func(*kgo.Record) []string
	// Admit, when set, decides whether a lane (not "") may start now: a
	// per-lane rate limit or concurrency cap. Refused, the lane's task
	// waits until retry without taking one of the partition's Concurrency
	// slots, so other lanes of the partition go on. release, when not nil,
	// is called once the lane's processing returns.
	Admit func(lane string, now time.Time) (release func(), retry time.Time, ok bool)
	// Concurrency bounds the lanes (deliveries) processed at once per
	// partition.
	Concurrency int
	// MaxInFlight bounds the records held per partition: its read-ahead
	// window, polled and not yet committed.
	MaxInFlight int
	// MaxInFlightBytes bounds the bytes (keys, values, headers) held per
	// partition.
	MaxInFlightBytes int64
	// FlushInterval is how long completed records may wait for their commit.
	FlushInterval time.Duration
	// Grace bounds how long shutdown waits for in-flight records.
	Grace time.Duration
	// TxnTimeout bounds producing a transaction's records and ending it;
	// longer than a broker failover, shorter than the transaction timeout.
	TxnTimeout time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// OnAssigned, if set, runs on assignment before the partitions' records
	// are taken: a stage loads the state it keeps per partition (the
	// strict stage's holds). An error is logged.
	OnAssigned func(ctx context.Context, partitions []int32) error
	// OnReleased, if set, runs when partitions are revoked or lost.
	OnReleased func(partitions []int32)
}

// Defaults of a runner's timing; config.Default refers to DefaultGrace.
const (
	// DefaultFlushInterval is how long completed records wait for their
	// commit at most.
	DefaultFlushInterval = 50 * time.Millisecond
	// DefaultGrace bounds how long shutdown waits for in-flight records.
	DefaultGrace = 15 * time.Second
	// DefaultTxnTimeout bounds producing a transaction's records and ending it.
	DefaultTxnTimeout = 30 * time.Second
)

func (c *RunnerConfig) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.TxnTimeout <= 0 {
		c.TxnTimeout = DefaultTxnTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
