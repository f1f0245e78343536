package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
)

// Defaults of Config.
const (
	DefaultBatch       = 500
	DefaultPoll        = 200 * time.Millisecond
	DefaultStandbyPoll = time.Second
	// MaxBatch bounds Batch: the state record names every seq of a batch.
	MaxBatch = 5000
)

// lagEvery is how often the active relay samples the rows waiting.
const lagEvery = 5 * time.Second

// HeaderOutboxSeq names the record header that carries the outbox row's
// seq on the records the relay produces.
const HeaderOutboxSeq = "hookline-outbox-seq"

// Config configures a Relay.
type Config struct {
	// DSN is the PostgreSQL connection string of the producer's database.
	DSN string
	// Table is the outbox table; default DefaultTable.
	Table string
	// Brokers and KafkaOpts reach the Kafka cluster.
	Brokers   []string
	KafkaOpts []kgo.Opt
	// EventsTopic receives the rows; DLQTopic the rows that are not valid
	// events; StateTopic the relay's position (created when missing, with
	// ReplicationFactor, -1 for the broker default).
	EventsTopic, DLQTopic, StateTopic string
	ReplicationFactor                 int
	// TransactionalID must be the same for every relay of one table, so
	// that the active relay fences any other.
	TransactionalID string
	// Batch is the most rows per poll and Kafka transaction; default
	// DefaultBatch, at most MaxBatch.
	Batch int
	// Poll is how long the relay waits after a poll that found fewer than
	// Batch rows; StandbyPoll how often a standby tries to take over.
	Poll, StandbyPoll time.Duration
	// Registerer gets the relay's metrics; may be nil.
	Registerer prometheus.Registerer
	// Logger defaults to discarding.
	Logger *slog.Logger

	// afterCommit, in this package's tests, runs between a batch's Kafka
	// commit and the delete of its rows: a crash there is the case the
	// state record exists for.
	afterCommit func() error
}

// Relay publishes committed outbox rows to the events topic.
type Relay struct {
	cfg Config
	m   *metrics
}

// New checks cfg and fills in defaults. Errors name the setting.
func New(cfg Config) (*Relay, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.StandbyPoll == 0 {
		cfg.StandbyPoll = DefaultStandbyPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.DSN == "":
		return nil, errors.New("outbox relay: outbox_postgres: a PostgreSQL DSN is required")
	case len(cfg.Brokers) == 0:
		return nil, errors.New("outbox relay: brokers: at least one is required")
	case cfg.EventsTopic == "" || cfg.DLQTopic == "" || cfg.StateTopic == "":
		return nil, errors.New("outbox relay: the events, DLQ and state topics are required")
	case cfg.TransactionalID == "":
		return nil, errors.New("outbox relay: TransactionalID is required")
	case cfg.Batch < 1 || cfg.Batch > MaxBatch:
		return nil, fmt.Errorf("outbox relay: outbox_batch: must be between 1 and %d, got %d", MaxBatch, cfg.Batch)
	case cfg.Poll < 0 || cfg.StandbyPoll < 0:
		return nil, errors.New("outbox relay: outbox_poll: must not be negative")
	}
	if err := ValidateTable(cfg.Table); err != nil {
		return nil, fmt.Errorf("outbox relay: outbox_table: %w", err)
	}
	if _, err := pgx.ParseConfig(cfg.DSN); err != nil {
		// pgx's message can quote the DSN, password included.
		return nil, errors.New("outbox relay: outbox_postgres: not a valid PostgreSQL connection string")
	}
	return &Relay{cfg: cfg, m: newMetrics(cfg.Registerer)}, nil
}

// Run relays until ctx ends. It retries every PostgreSQL and Kafka error
// with backoff, and returns nil when ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(10*time.Second), backoff.WithMaxElapsedTime(0))
	for {
		relayed, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if relayed {
			b.Reset()
		}
		r.m.errors.Inc()
		wait := b.NextBackOff()
		r.cfg.Logger.Warn("outbox relay interrupted; starting over", "table", r.cfg.Table, "err", err, "retry_in", wait)
		if err := sleep(ctx, wait); err != nil {
			return nil
		}
	}
}

// session is one PostgreSQL connection: a standby until it holds the
// table's advisory lock, then the active relay until an error. relayed says
// whether it published anything.
func (r *Relay) session(ctx context.Context) (relayed bool, err error) {
	conn, err := pgx.Connect(ctx, r.cfg.DSN)
	if err != nil {
		return false, fmt.Errorf("connect to postgres: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if err := r.takeLock(ctx, conn); err != nil {
		return false, err
	}
	r.m.active.Set(1)
	defer r.m.active.Set(0)
	r.cfg.Logger.Info("outbox relay active", "table", r.cfg.Table)

	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.cfg.KafkaOpts...),
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(time.Minute),
		kgo.RecordRetries(10),
	)...)
	if err != nil {
		return false, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := r.ensureStateTopic(ctx, cl); err != nil {
		return false, err
	}
	// Loading the producer id fences every earlier producer of this
	// transactional id and settles its open transaction: once this
	// returns, the state topic says what was committed.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return false, fmt.Errorf("init transactional producer %s: %w", r.cfg.TransactionalID, err)
	}
	last, err := r.lastState(ctx, cl)
	if err != nil {
		return false, err
	}
	if len(last.Seqs) > 0 {
		if err := r.deleteRows(ctx, conn, last.Seqs); err != nil {
			return false, err
		}
	}
	batch := last.Batch
	var lastLag time.Time
	for {
		if time.Since(lastLag) >= lagEvery {
			if err := r.sampleLag(ctx, conn); err != nil {
				return relayed, err
			}
			lastLag = time.Now()
		}
		batch++
		n, err := r.relayBatch(ctx, conn, cl, batch)
		if err != nil {
			return relayed, err
		}
		if n > 0 {
			relayed = true
		}
		if n < r.cfg.Batch {
			if err := sleep(ctx, r.cfg.Poll); err != nil {
				return relayed, err
			}
		}
	}
}

// takeLock waits as a standby until this connection holds the table's
// advisory lock.
func (r *Relay) takeLock(ctx context.Context, conn *pgx.Conn) error {
	standby := false
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", "hookline-outbox:"+r.cfg.Table).Scan(&ok); err != nil {
			return fmt.Errorf("try the relay lock: %w", err)
		}
		if ok {
			return nil
		}
		if !standby {
			r.cfg.Logger.Info("outbox relay standing by: another relay is active", "table", r.cfg.Table)
			standby = true
		}
		if err := sleep(ctx, r.cfg.StandbyPoll); err != nil {
			return err
		}
	}
}

type row struct {
	seq                                    int64
	id, typ, endpoint, tenant, orderingKey string
	payload                                string
	createdAt                              time.Time
}

// relayBatch publishes the next committed rows in one Kafka transaction
// with the state record naming them, then deletes them.
func (r *Relay) relayBatch(ctx context.Context, conn *pgx.Conn, cl *kgo.Client, batch int64) (int, error) {
	rows, err := conn.Query(ctx, `SELECT seq, id, type, coalesce(endpoint_id, ''), coalesce(tenant, ''),
		coalesce(ordering_key, ''), payload::text, created_at FROM `+r.cfg.Table+` ORDER BY seq LIMIT $1`, r.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("read outbox rows: %w", err)
	}
	got, err := pgx.CollectRows(rows, func(rs pgx.CollectableRow) (row, error) {
		var x row
		err := rs.Scan(&x.seq, &x.id, &x.typ, &x.endpoint, &x.tenant, &x.orderingKey, &x.payload, &x.createdAt)
		return x, err
	})
	if err != nil {
		return 0, fmt.Errorf("read outbox rows: %w", err)
	}
	if len(got) == 0 {
		return 0, nil
	}
	st := state{V: 1, Table: r.cfg.Table, Batch: batch, Seqs: make([]int64, len(got))}
	recs := make([]*kgo.Record, 0, len(got)+1)
	bad := 0
	for i, x := range got {
		st.Seqs[i] = x.seq
		rec, isBad := r.record(x)
		if isBad {
			bad++
		}
		recs = append(recs, rec)
	}
	sv, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	recs = append(recs, &kgo.Record{Topic: r.cfg.StateTopic, Partition: 0, Key: []byte(r.cfg.Table), Value: sv})
	if err := r.transact(ctx, cl, recs); err != nil {
		return 0, err
	}
	r.m.relayed.Add(float64(len(got) - bad))
	r.m.deadLettered.Add(float64(bad))
	if r.cfg.afterCommit != nil {
		if err := r.cfg.afterCommit(); err != nil {
			return 0, err
		}
	}
	if err := r.deleteRows(ctx, conn, st.Seqs); err != nil {
		return 0, err
	}
	return len(got), nil
}

// record is the events-topic record of x, or its DLQ record with the
// reason when x is not a valid event.
func (r *Relay) record(x row) (*kgo.Record, bool) {
	ev := envelope.Event{
		ID: x.id, Type: x.typ, EndpointID: x.endpoint, Tenant: x.tenant, OrderingKey: x.orderingKey,
		Payload: []byte(x.payload), CreatedAt: x.createdAt.UTC(),
	}
	seq := kgo.RecordHeader{Key: HeaderOutboxSeq, Value: fmt.Appendf(nil, "%d", x.seq)}
	rec, err := envelope.Record(r.cfg.EventsTopic, ev)
	if err == nil {
		rec.Headers = append(rec.Headers, seq)
		return rec, false
	}
	reason := fmt.Sprintf("outbox row %q (seq %d) of %s is not a valid event: %v", x.id, x.seq, r.cfg.Table, err)
	r.cfg.Logger.Warn("outbox row dead-lettered", "table", r.cfg.Table, "event_id", x.id, "seq", x.seq, "reason", err)
	value, encErr := envelope.Encode(ev)
	if encErr != nil {
		value, _ = json.Marshal(map[string]any{"id": x.id, "type": x.typ, "payload_text": x.payload})
	}
	now := time.Now()
	hdrs := processors.RetryState{
		Entered: now, LastClass: processors.ClassMalformed, LastError: processors.TruncateError(err.Error()),
		OriginTopic: "postgres:" + r.cfg.Table, OriginOffset: x.seq,
		Tier: processors.TierDLQ, DLQReason: processors.TruncateError(reason),
	}.Headers()
	return &kgo.Record{Topic: r.cfg.DLQTopic, Key: []byte(ev.Key()), Value: value, Headers: append(hdrs, seq)}, true
}

// transact produces recs in one transaction and commits it. An error from
// the commit itself leaves the outcome unknown: the caller starts a new
// session, whose state read decides.
func (r *Relay) transact(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	var (
		mu   sync.Mutex
		perr error
	)
	for _, rec := range recs {
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = errors.Join(perr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		perr = errors.Join(perr, err)
	}
	mu.Lock()
	failed := perr
	mu.Unlock()
	if failed != nil {
		_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return fmt.Errorf("produce outbox batch: %w", failed)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit outbox batch (outcome unknown, the next session reads it): %w", err)
	}
	return nil
}

func (r *Relay) deleteRows(ctx context.Context, conn *pgx.Conn, seqs []int64) error {
	if _, err := conn.Exec(ctx, "DELETE FROM "+r.cfg.Table+" WHERE seq = ANY($1)", seqs); err != nil {
		return fmt.Errorf("delete relayed outbox rows: %w", err)
	}
	return nil
}

func (r *Relay) sampleLag(ctx context.Context, conn *pgx.Conn) error {
	var n int64
	var oldest *time.Time
	if err := conn.QueryRow(ctx, "SELECT count(*), min(created_at) FROM "+r.cfg.Table).Scan(&n, &oldest); err != nil {
		return fmt.Errorf("sample outbox lag: %w", err)
	}
	r.m.lagRows.Set(float64(n))
	if oldest == nil {
		r.m.lagSeconds.Set(0)
	} else {
		r.m.lagSeconds.Set(max(time.Since(*oldest).Seconds(), 0))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
