package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
)

// SinkConfig configures a Sink. Zero fields take the defaults below.
type SinkConfig struct {
	// Brokers are the Kafka seed brokers. Required unless KafkaOpts seeds them.
	Brokers []string
	// KafkaOpts are extra client options (TLS, SASL, logging), applied after
	// the sink's own.
	KafkaOpts []kgo.Opt
	// Topic is the attempts topic. Default "attempts".
	Topic string
	// Group is the sink's consumer group. Default "hookline-sink".
	Group string

	// Conn is the ClickHouse connection (see Open). Required; the caller
	// closes it after Run returns.
	Conn driver.Conn
	// Database holds the attempts table (see Migrate). Default "hookline".
	Database string

	// BatchRows closes a batch when it holds this many records. Default 10000.
	BatchRows int
	// BatchAge closes a batch this long after its first record arrived.
	// Default 1s.
	BatchAge time.Duration
	// InsertTimeout bounds one insert attempt. Default 30s.
	InsertTimeout time.Duration
	// RetryInitial and RetryMax bound the jittered exponential backoff
	// between insert attempts while ClickHouse fails. Defaults 250ms and 10s.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// ShutdownGrace bounds the last flush after Run's context is canceled.
	// Records not written by then are not committed, so the next run
	// writes them. Default 10s.
	ShutdownGrace time.Duration

	// Registerer receives the sink's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Sink defaults.
const (
	DefaultAttemptsTopic = "attempts"
	DefaultSinkGroup     = "hookline-sink"
	DefaultBatchRows     = 10000
	DefaultBatchAge      = time.Second
)

func (c SinkConfig) withDefaults() SinkConfig {
	if c.Topic == "" {
		c.Topic = DefaultAttemptsTopic
	}
	if c.Group == "" {
		c.Group = DefaultSinkGroup
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.BatchAge == 0 {
		c.BatchAge = DefaultBatchAge
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = 30 * time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 250 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate rejects a configuration the sink cannot run with, naming the field.
func (c SinkConfig) Validate() error {
	switch {
	case len(c.Brokers) == 0 && len(c.KafkaOpts) == 0:
		return errors.New("sink config: Brokers: at least one seed broker is required")
	case c.Conn == nil:
		return errors.New("sink config: Conn: a ClickHouse connection is required")
	case c.BatchRows < 0:
		return fmt.Errorf("sink config: BatchRows: must be positive, got %d", c.BatchRows)
	case c.BatchAge < 0:
		return fmt.Errorf("sink config: BatchAge: must be positive, got %s", c.BatchAge)
	case c.InsertTimeout < 0 || c.RetryInitial < 0 || c.RetryMax < 0 || c.ShutdownGrace < 0:
		return errors.New("sink config: InsertTimeout, RetryInitial, RetryMax, ShutdownGrace: must not be negative")
	case c.RetryMax != 0 && c.RetryInitial > c.RetryMax:
		return fmt.Errorf("sink config: RetryInitial: %s is above RetryMax %s", c.RetryInitial, c.RetryMax)
	}
	return CheckDatabaseName(c.Database)
}

// Sink consumes the attempts topic and writes one ClickHouse row per attempt
// record, in batches. A batch's offsets are committed only after ClickHouse
// accepted it; while ClickHouse fails, the sink retries the same batch with
// jittered backoff and reads no further, so no record is skipped. A record
// written twice collapses in the attempts table.
type Sink struct {
	cfg    SinkConfig
	client *kgo.Client
	log    *slog.Logger
	now    func() time.Time

	// oldest is the Kafka timestamp (unix nanos) of the oldest record read
	// but not yet written, 0 when none is pending.
	oldest atomic.Int64

	rowsWritten  prometheus.Counter
	rejected     prometheus.Counter
	insertErrors prometheus.Counter
	commitErrors prometheus.Counter
	batchSeconds prometheus.Histogram
}

// NewSink builds a sink and its Kafka client. It does not contact
// ClickHouse; run Migrate first.
func NewSink(cfg SinkConfig) (*Sink, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Hold partitions from a poll until its batch is written and
		// committed, so a batch never straddles an ownership change.
		kgo.BlockRebalanceOnPoll(),
	}
	if len(cfg.Brokers) > 0 {
		opts = append(opts, kgo.SeedBrokers(cfg.Brokers...))
	}
	opts = append(opts, cfg.KafkaOpts...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("new sink kafka client: %w", err)
	}
	s := &Sink{cfg: cfg, client: client, log: cfg.Logger.With("component", "sink"), now: time.Now}
	f := promauto.With(cfg.Registerer)
	s.rowsWritten = f.NewCounter(prometheus.CounterOpts{
		Name: "hookline_sink_rows_written_total",
		Help: "Attempt rows ClickHouse accepted (a retried batch counts once).",
	})
	s.rejected = f.NewCounter(prometheus.CounterOpts{
		Name: "hookline_sink_rejected_total",
		Help: "Attempts-topic records that could not be decoded, written to attempts_rejected.",
	})
	s.insertErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "hookline_sink_insert_errors_total",
		Help: "Failed ClickHouse batch inserts; each is retried.",
	})
	s.commitErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "hookline_sink_commit_errors_total",
		Help: "Failed Kafka offset commits after a written batch; the batch is re-read and collapses.",
	})
	s.batchSeconds = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookline_sink_batch_seconds",
		Help:    "Time ClickHouse took to accept a batch insert.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookline_sink_lag_seconds",
		Help: "Age of the oldest attempt record read from Kafka but not yet in ClickHouse; 0 when none is pending.",
	}, s.Lag)
	return s, nil
}

// Lag is the age in seconds of the oldest attempt the sink holds that is not
// yet in ClickHouse, 0 when it holds none.
func (s *Sink) Lag() float64 {
	ns := s.oldest.Load()
	if ns == 0 {
		return 0
	}
	return max(0, s.now().Sub(time.Unix(0, ns)).Seconds())
}

// batch is the pending work: the records read since the last commit and
// what they decode to.
type batch struct {
	records  []*kgo.Record
	rows     []Row
	rejected []Rejected
	opened   time.Time
}

func (b *batch) add(r *kgo.Record) {
	b.records = append(b.records, r)
	a, err := processors.DecodeAttempt(r.Value)
	if err == nil && a.AttemptID == "" {
		err = errors.New("decode attempt record: attempt_id is empty")
	}
	if err != nil {
		b.rejected = append(b.rejected, Rejected{
			KafkaTopic: r.Topic, KafkaPartition: r.Partition, KafkaOffset: r.Offset,
			Value: r.Value, Err: err.Error(),
		})
		return
	}
	b.rows = append(b.rows, Row{Attempt: a, KafkaTopic: r.Topic, KafkaPartition: r.Partition, KafkaOffset: r.Offset})
}

// Run consumes and writes until ctx is canceled, then writes what it holds
// (bounded by ShutdownGrace) and leaves the group. It returns nil after a
// clean shutdown and an error only when the Kafka client fails for good.
func (s *Sink) Run(ctx context.Context) error {
	defer s.client.CloseAllowingRebalance()
	s.log.Info("sink started", "topic", s.cfg.Topic, "group", s.cfg.Group, "database", s.cfg.Database,
		"batch_rows", s.cfg.BatchRows, "batch_age", s.cfg.BatchAge)
	var b batch
	for {
		if ctx.Err() != nil {
			return s.shutdown(ctx, &b)
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if len(b.records) > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, b.opened.Add(s.cfg.BatchAge))
		}
		fetches := s.client.PollRecords(pollCtx, s.cfg.BatchRows-len(b.records))
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("sink: kafka client closed")
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			s.log.Warn("sink fetch error", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if len(b.records) == 0 {
				b.opened = s.now()
			}
			b.add(r)
			if ns := r.Timestamp.UnixNano(); s.oldest.Load() == 0 || ns < s.oldest.Load() {
				s.oldest.Store(ns)
			}
		})
		if len(b.records) == 0 {
			s.client.AllowRebalance()
			continue
		}
		if len(b.records) < s.cfg.BatchRows && s.now().Before(b.opened.Add(s.cfg.BatchAge)) {
			continue
		}
		if err := s.flush(ctx, &b); err != nil {
			return s.shutdown(ctx, &b)
		}
	}
}

// shutdown makes one bounded attempt to write and commit what is pending.
func (s *Sink) shutdown(ctx context.Context, b *batch) error {
	if len(b.records) > 0 {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
		defer cancel()
		if err := s.flush(gctx, b); err != nil {
			s.log.Warn("sink stopped with records not written; they are read again on the next start",
				"records", len(b.records), "err", err)
		}
	}
	s.log.Info("sink stopped")
	return nil
}

// flush writes the batch, retrying with jittered backoff until ClickHouse
// accepts it or ctx ends, then commits its offsets. It returns an error only
// when ctx ended first; the batch is then left pending and uncommitted.
func (s *Sink) flush(ctx context.Context, b *batch) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = s.cfg.RetryInitial
	bo.MaxInterval = s.cfg.RetryMax
	bo.RandomizationFactor = 0.5
	bo.MaxElapsedTime = 0
	bo.Reset()
	for attempt := 1; ; attempt++ {
		start := s.now()
		err := s.insert(ctx, b)
		if err == nil {
			s.batchSeconds.Observe(s.now().Sub(start).Seconds())
			if attempt > 1 {
				s.log.Info("clickhouse accepted batch after retries", "attempts", attempt, "rows", len(b.rows))
			}
			break
		}
		s.insertErrors.Inc()
		wait := bo.NextBackOff()
		s.log.Warn("clickhouse insert failed; retrying the same batch",
			"rows", len(b.rows), "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("write batch of %d records: %w", len(b.records), ctx.Err())
		case <-t.C:
		}
	}
	s.rowsWritten.Add(float64(len(b.rows)))
	s.rejected.Add(float64(len(b.rejected)))
	if err := s.client.CommitRecords(ctx, b.records...); err != nil {
		// The rows are in ClickHouse; the records will be read and
		// written again, and collapse by attempt id.
		s.commitErrors.Inc()
		s.log.Warn("commit after written batch failed; records will be rewritten", "records", len(b.records), "err", err)
	}
	*b = batch{}
	s.oldest.Store(0)
	s.client.AllowRebalance()
	return nil
}

func (s *Sink) insert(ctx context.Context, b *batch) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	if err := InsertRows(ctx, s.cfg.Conn, s.cfg.Database, b.rows); err != nil {
		return err
	}
	return InsertRejected(ctx, s.cfg.Conn, s.cfg.Database, b.rejected)
}
