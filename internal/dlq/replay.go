package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/operational"
)

// replayRun is the state of one run of a replay.
type replayRun struct {
	c     *Client
	o     ReplayOptions
	audit AuditRecord // the state as of the last commit
	cur   AuditRecord // the state including the open transaction
	start time.Time
	// total is what this run reads; scanned, what it has read.
	total, scanned int64
	tx             *txn
	pace           *pacer
}

// Replay sends the DLQ entries that pass the filter to the target, as
// ReplayOptions say. It returns what was done even with an error; an
// interrupted or failed replay is resumed by running it again with the
// same ID.
func (c *Client) Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	if o.ID == "" {
		o.ID = NewReplayID(c.cfg.Now())
	}
	res := ReplayResult{ReplayID: o.ID, DryRun: o.DryRun}
	if err := o.Validate(); err != nil {
		return res, err
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = DefaultCommitInterval
	}

	var prod *kgo.Client
	if !o.DryRun {
		if err := c.ensureAudit(ctx); err != nil {
			return res, err
		}
		var err error
		prod, err = kgo.NewClient(c.cfg.opts(
			kgo.TransactionalID(c.cfg.Topics.Prefix+"dlq-replay."+o.ID),
			kgo.TransactionTimeout(time.Minute),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(5*time.Millisecond),
			// One produce request in flight per broker. Kafka before
			// 4.5 accepts any first sequence on a partition never
			// written to: with two requests in flight, a retried
			// first one (seen in CI on the audit topic's first write,
			// on Kafka 4.1.1) is refused for good as
			// OUT_OF_ORDER_SEQUENCE_NUMBER once the second is in
			// (KAFKA-15591). A replay is paced, and loses nothing by
			// waiting for each request.
			kgo.MaxProduceRequestsInflightPerBroker(1),
		)...)
		if err != nil {
			return res, fmt.Errorf("replay %s: create producer: %w", o.ID, err)
		}
		defer prod.Close()
		// Loading the producer id fences any earlier run of this replay
		// and aborts its open transaction, so the progress read next is
		// final.
		if _, _, err := prod.ProducerID(ctx); err != nil {
			return res, fmt.Errorf("replay %s: init transactional producer: %w", o.ID, err)
		}
	}

	prior, err := c.replayState(ctx, o.ID)
	if err != nil {
		return res, fmt.Errorf("replay %s: read audit topic %s: %w", o.ID, c.cfg.Topics.Audit, err)
	}
	now := c.cfg.Now()
	r := &replayRun{c: c, o: o, start: now, pace: newPacer(o.Rate, c.cfg.Now, sleepCtx)}
	if prior != nil {
		if err := resumable(prior, &o); err != nil {
			return res, err
		}
		r.o = o
		r.audit = *prior
		r.audit.Kind, r.audit.Operator, r.audit.At, r.audit.Error = KindResumed, o.Operator, now, ""
		r.audit.KafkaUser = c.cfg.KafkaUser
		r.audit.Rate = o.Rate
		res.Resumed = true
	} else {
		if o.Target == "" {
			o.Target = TargetEvents
		}
		r.o = o
		spans, err := c.bounds(ctx, c.cfg.Topics.DLQ)
		if err != nil {
			return res, err
		}
		r.audit = AuditRecord{
			ReplayID: o.ID, Kind: KindStarted, Operator: o.Operator, KafkaUser: c.cfg.KafkaUser, StartedAt: now, At: now,
			Target: o.Target, DLQTopic: c.cfg.Topics.DLQ, Filter: o.Filter, Rate: o.Rate,
			Ends: map[int32]int64{}, Next: map[int32]int64{},
		}
		for p, s := range spans {
			r.audit.Ends[p], r.audit.Next[p] = s.end, s.from
		}
	}
	res.Target, res.Filter = r.o.Target, r.o.Filter
	r.audit.Topic = c.targetTopic(r.o.Target)
	res.Topic = r.audit.Topic
	if r.o.Target == TargetRetry && len(c.cfg.Topics.Tiers) == 0 {
		return res, errors.New("replay: --to retry needs a retry tier, and none is configured")
	}
	r.cur = r.audit.clone()
	r.total = r.audit.Remaining()
	fill := func() {
		res.Matched, res.Sent, res.Skipped, res.Outcome = r.cur.Matched, r.cur.Sent, r.cur.Skipped, r.cur.Outcome
	}

	if prior != nil && prior.Outcome == OutcomeCompleted {
		res.AlreadyCompleted = true
		fill()
		return res, nil
	}
	if err := c.checkTarget(ctx, r.audit.Topic, r.audit.Ends); err != nil {
		return res, err
	}
	if o.DryRun {
		// Counts of this run only: earlier runs' are in the audit trail.
		matched0, skipped0 := r.cur.Matched, r.cur.Skipped
		err := r.scan(ctx, func(e *Entry) error {
			if _, err := c.replayRecord(e, r.o.Target, mark{}); err != nil {
				r.cur.Skipped++
			}
			return nil
		})
		res.Matched, res.Skipped = r.cur.Matched-matched0, r.cur.Skipped-skipped0
		res.Outcome = OutcomeCompleted
		if err != nil {
			res.Outcome = OutcomeInterrupted
		}
		return res, err
	}

	r.tx = &txn{cl: prod}
	r.audit.Runs++
	r.audit.Outcome = OutcomeRunning
	r.cur = r.audit.clone()
	if err := r.commit(ctx, r.audit.Kind, OutcomeRunning); err != nil {
		fill()
		return res, fmt.Errorf("replay %s: record start in %s: %w", o.ID, c.cfg.Topics.Audit, err)
	}
	m := mark{id: o.ID, operator: o.Operator, at: now}
	err = r.scan(ctx, func(e *Entry) error {
		rec, err := c.replayRecord(e, r.o.Target, m)
		if err != nil {
			c.cfg.Logger.Warn("skipping DLQ record", "replay_id", o.ID, "partition", e.Partition, "offset", e.Offset, "reason", err)
			r.cur.Skipped++
			return nil
		}
		// A long wait must not hold a transaction open past its timeout.
		if r.tx.open && time.Since(r.tx.began)+r.pace.Delay() >= o.CommitInterval {
			if err := r.commit(ctx, KindProgress, OutcomeRunning); err != nil {
				return err
			}
		}
		if err := r.pace.Wait(ctx); err != nil {
			return err
		}
		if err := r.tx.produce(ctx, rec); err != nil {
			return err
		}
		r.cur.Sent++
		r.progress()
		return nil
	})
	if err == nil {
		err = r.commit(ctx, KindFinished, OutcomeCompleted)
	}
	if err != nil {
		r.fail(ctx, err)
		fill()
		res.Sent = r.audit.Sent
		return res, fmt.Errorf("replay %s: %w (sent %d; run it again with --replay-id %s to resume)", o.ID, err, r.audit.Sent, o.ID)
	}
	fill()
	return res, nil
}

// resumable checks that o may resume prior, and fills o's defaults from it.
func resumable(prior *AuditRecord, o *ReplayOptions) error {
	if o.Target == "" {
		o.Target = prior.Target
	}
	if o.Filter.IsZero() {
		o.Filter = prior.Filter
	}
	switch {
	case o.Target != prior.Target:
		return fmt.Errorf("%w: replay %s was started with --to %s, not %s; resume it without --to", ErrReplayMismatch, prior.ReplayID, prior.Target, o.Target)
	case !o.Filter.Equal(prior.Filter):
		return fmt.Errorf("%w: replay %s was started with filters %s, not %s; resume it without filters, or use a new --replay-id",
			ErrReplayMismatch, prior.ReplayID, prior.Filter, o.Filter)
	}
	return nil
}

func (c *Client) targetTopic(t Target) string {
	if t == TargetRetry && len(c.cfg.Topics.Tiers) > 0 {
		return c.cfg.Topics.Tiers[0].Topic
	}
	if t == TargetSkip {
		return c.cfg.Topics.Holds
	}
	return c.cfg.Topics.Events
}

// checkTarget makes sure every DLQ partition has its namesake in topic: a
// record keeps its partition number.
func (c *Client) checkTarget(ctx context.Context, topic string, ends map[int32]int64) error {
	tds, err := c.adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	for p := range ends {
		if _, ok := td.Partitions[p]; !ok {
			return fmt.Errorf("DLQ partition %d has no namesake in %s (%d partitions): the topics' partition counts differ", p, topic, len(td.Partitions))
		}
	}
	return nil
}

// scan reads the DLQ from the run's next offsets to its ends and hands the
// matching entries to fn, keeping counts and committing progress.
func (r *replayRun) scan(ctx context.Context, fn func(*Entry) error) error {
	spans := make(map[int32]span, len(r.cur.Ends))
	for p, end := range r.cur.Ends {
		spans[p] = span{from: r.cur.Next[p], end: end}
	}
	limit := int64(r.o.Filter.Limit)
	if limit > 0 && r.cur.Matched >= limit {
		return nil
	}
	err := r.c.read(ctx, r.c.cfg.Topics.DLQ, spans, func(rec *kgo.Record) error {
		e := NewEntry(rec)
		matched := r.o.Filter.Match(e, r.c.Tenant(e))
		if matched {
			r.cur.Matched++
			if r.o.OnMatch != nil {
				r.o.OnMatch(e)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		// After fn: the record is now in the open transaction (or
		// skipped), so the next offset may move past it.
		r.cur.Next[rec.Partition] = rec.Offset + 1
		r.cur.Scanned++
		r.scanned++
		if r.scanned%1024 == 0 {
			r.progress()
		}
		if r.tx != nil && (r.tx.pending >= r.o.BatchSize || time.Since(r.tx.began) >= r.o.CommitInterval) {
			if err := r.commit(ctx, KindProgress, OutcomeRunning); err != nil {
				return err
			}
		}
		if limit > 0 && r.cur.Matched >= limit {
			return errLimit
		}
		return nil
	})
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

func (r *replayRun) progress() {
	if r.o.Progress == nil {
		return
	}
	r.o.Progress(Progress{
		ReplayID: r.o.ID, Total: r.total, Scanned: r.scanned,
		Matched: r.cur.Matched, Sent: r.cur.Sent, Committed: r.audit.Sent, Skipped: r.cur.Skipped,
		Elapsed: time.Since(r.start),
	})
}

// commit writes the current state as an audit record of kind with outcome
// and commits it together with the records sent since the last commit.
func (r *replayRun) commit(ctx context.Context, kind string, outcome Outcome) error {
	a := r.cur.clone()
	a.Kind, a.Outcome, a.At = kind, outcome, r.c.cfg.Now()
	rec, err := a.record(r.c.cfg.Topics.Audit)
	if err != nil {
		return err
	}
	if err := r.tx.produce(ctx, rec); err != nil {
		return err
	}
	if kind == KindFinished {
		// Operators hear of the end in the transaction that records it.
		op, err := r.finishedEvent(a)
		if err != nil {
			return err
		}
		if err := r.tx.produce(ctx, op); err != nil {
			return err
		}
	}
	if err := r.tx.commit(ctx); err != nil {
		return err
	}
	r.audit = a
	r.cur.Kind, r.cur.Outcome = kind, outcome
	r.progress()
	return nil
}

// finishedEvent is the dlq.replay.finished event of the run that a ends, in
// partition 0 of the operational topic (the replay's producer partitions
// by hand). Its id is the replay's and its run's, so a run records one.
func (r *replayRun) finishedEvent(a AuditRecord) (*kgo.Record, error) {
	ev := operational.New(operational.ReplayFinished, a.At, operational.Data{
		ReplayID: a.ReplayID, Replayed: a.Sent, Skipped: a.Skipped,
		Outcome: string(a.Outcome), Error: a.Error,
	}, a.ReplayID, strconv.Itoa(a.Runs))
	rec, err := ev.Record(r.c.cfg.Topics.Operational)
	if err != nil {
		return nil, err
	}
	rec.Partition = 0
	return rec, nil
}

// fail aborts the open transaction and records how the run ended, with
// the state of the last commit. It uses a context of its own: ctx may be
// what ended the run.
func (r *replayRun) fail(ctx context.Context, cause error) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log := r.c.cfg.Logger.With("replay_id", r.o.ID)
	if err := r.tx.abort(bg); err != nil {
		log.Warn("abort replay transaction", "err", err)
	}
	outcome := OutcomeFailed
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		outcome = OutcomeInterrupted
	}
	r.cur = r.audit.clone()
	r.cur.Error = cause.Error()
	if err := r.commit(bg, KindFinished, outcome); err != nil {
		// The last progress record still says how far the replay got.
		log.Warn("record replay outcome in audit topic", "outcome", outcome, "err", err)
		_ = r.tx.abort(bg)
	}
}
