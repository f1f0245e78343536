package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Runner consumes one topic in a consumer group and runs a Stage on every
// record, committing successors and offsets transactionally.
type Runner struct {
	cfg  RunnerConfig
	sess *kgo.GroupTransactSession
	log  *slog.Logger

	assigned atomic.Bool
	wake     chan struct{}
	done     chan completion
	// workers are the goroutines running Stage.Process; abandoned is
	// closed when Run stops reading done, so that none blocks on it.
	workers   sync.WaitGroup
	abandoned chan struct{}

	// The group callbacks queue assignments and revocations; the loop
	// applies them in order (see handleEvents).
	eventsMu sync.Mutex
	events   []partEvent

	// seeds are what partitions start from: loaded from the committed
	// metadata on assignment, or kept from the last commit when a
	// transaction aborts. Owned by the loop.
	seeds map[int32]*partitionStart

	outputsID uint32
	outIndex  map[string]int // Outputs -> index

	parts    map[int32]*partition
	inflight int
	doneHeld int // completed records not yet committed (an upper bound)
	lastEnd  time.Time
	stats    RunnerStats

	heldKeys, heldRecords atomic.Int64
}

// Held reports the keys whose first record the stage deferred (see
// Deferred) and the records of those keys in the windows, as of the loop's
// last pass.
func (r *Runner) Held() (keys, records int64) {
	return r.heldKeys.Load(), r.heldRecords.Load()
}

// RunnerStats are counters the runner keeps for tests and the demo.
type RunnerStats struct {
	Committed atomic.Int64 // transactions committed
	Aborted   atomic.Int64 // transactions aborted
	Processed atomic.Int64 // records whose successors were committed
}

type completion struct {
	p   *partition
	t   *task
	out []*kgo.Record
	err error
	// later is set when the stage deferred the task (see Deferred).
	later    time.Time
	deferred bool
}

// NewRunner creates the stage's transactional group client.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	switch {
	case cfg.Topic == "":
		return nil, errors.New("pipeline runner: topic is required")
	case cfg.Group == "":
		return nil, errors.New("pipeline runner: group is required")
	case cfg.TransactionalID == "":
		return nil, errors.New("pipeline runner: transactional id is required")
	case cfg.Stage == nil:
		return nil, errors.New("pipeline runner: stage is required")
	}
	r := &Runner{
		cfg:  cfg,
		log:  cfg.Logger.With("stage", cfg.Name),
		wake: make(chan struct{}, 1),
		done: make(chan completion, 4*cfg.Concurrency),

		abandoned: make(chan struct{}),
		parts:     make(map[int32]*partition),
		seeds:     make(map[int32]*partitionStart),

		outputsID: outputsID(cfg.Outputs),
		outIndex:  make(map[string]int, len(cfg.Outputs)),
	}
	for i, t := range cfg.Outputs {
		r.outIndex[t] = i
	}
	opts := append([]kgo.Opt{}, cfg.ClientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A resumed partition is fetched only once the fetch in flight
		// returns: keep that short so a due tier record is not held late.
		kgo.FetchMaxWait(200*time.Millisecond),
		// A crashed member's partitions wait for its session to time out:
		// keep that short (Kafka's minimum is 6s).
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		// Successors keep the partition number of the record they come from,
		// so a key never changes owner as it moves between topics.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Between a poll and AllowRebalance no callback runs, so the
		// loop applies a revoke and a new assignment before it takes
		// records of the new assignment (see handleEvents).
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			// A pause set by this loop just before an earlier revoke
			// must not outlive it.
			if ps := m[cfg.Topic]; len(ps) > 0 {
				cl.ResumeFetchPartitions(map[string][]int32{cfg.Topic: ps})
			}
			if ps := m[cfg.Topic]; len(ps) > 0 && cfg.OnAssigned != nil {
				if err := cfg.OnAssigned(ctx, ps); err != nil {
					r.log.Error("load stage state of assigned partitions", "partitions", ps, "err", err)
				}
			}
			r.loadDone(ctx, cl, m[cfg.Topic])
			r.assigned.Store(true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			r.release(cl, m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			r.release(cl, m)
		}),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("create %s stage client: %w", cfg.Name, err)
	}
	r.sess = sess
	return r, nil
}

// Name is the stage's name (RunnerConfig.Name).
func (r *Runner) Name() string { return r.cfg.Name }

// Group is the stage's consumer group (RunnerConfig.Group).
func (r *Runner) Group() string { return r.cfg.Group }

// Close releases the runner's client. Run closes it when it returns; Close
// is for a runner whose Run is never called.
func (r *Runner) Close() { r.sess.Close() }

// Ready reports whether the runner has joined its group and been assigned.
func (r *Runner) Ready() bool { return r.assigned.Load() }

// Stats returns the runner's counters.
func (r *Runner) Stats() *RunnerStats { return &r.stats }

// Client returns the underlying client, for lag monitoring.
func (r *Runner) Client() *kgo.Client { return r.sess.Client() }

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run processes records until ctx is done, then shuts down within Grace:
// it stops fetching, lets in-flight records finish, commits what completed,
// and leaves the group. Records still in flight after Grace are abandoned:
// their processing is cancelled, and Run returns once it has returned.
func (r *Runner) Run(ctx context.Context) error {
	// Records keep being processed for the grace period after ctx ends.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer r.sess.CloseAllowingRebalance()
	// No worker outlives Run: the ones still running are cancelled, and
	// none blocks on a completion that nobody reads any more.
	defer func() {
		cancelWork()
		close(r.abandoned)
		r.workers.Wait()
	}()

	r.fencePredecessor(ctx)
	r.lastEnd = r.cfg.Now()
	for ctx.Err() == nil {
		r.pollOnce(ctx)
		r.drainCompletions()
		r.dispatchAll(workCtx)
		if err := r.maybeFlush(false); err != nil {
			return err
		}
	}

	// Shutdown: no more fetching; wait for in-flight work, then commit it.
	deadline := time.NewTimer(r.cfg.Grace)
	defer deadline.Stop()
	for r.inflight > 0 {
		select {
		case c := <-r.done:
			r.complete(c)
		case <-deadline.C:
			r.log.Warn("shutdown grace period over, abandoning in-flight records", "in_flight", r.inflight)
			cancelWork()
			r.inflight = 0
		}
	}
	r.handleEvents()
	return r.maybeFlush(true)
}

// fencePredecessor initialises the stage's transactional producer now rather
// than at its first hand-off. A process killed mid-transaction left that
// transaction open, and its offsets pending in the group: the assignment
// reads stable offsets only (see loadDone), so without this it would wait
// for the broker to time the transaction out (about 50 s) before it could
// start. InitProducerID with the same transactional id fences the
// predecessor and aborts its open transaction at once. A failure here is
// only logged: the producer initialises again at the first hand-off.
func (r *Runner) fencePredecessor(ctx context.Context) {
	if _, _, err := r.sess.Client().ProducerID(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("initialise transactional producer; a predecessor's open transaction is aborted only when the broker times it out", "err", err)
	}
}

// pollOnce polls until records arrive, a completion or revoke wakes it, or the
// next scheduled moment (a flush or a due time) comes.
func (r *Runner) pollOnce(ctx context.Context) {
	wait := r.nextWait()
	if len(r.done) > 0 {
		// Completions are waiting (their wake may have gone to the last
		// poll): take what is buffered and come back for them.
		wait = time.Millisecond
	}
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-r.wake:
			select {
			case <-stop:
				// This poll is over, and its loop may already have
				// drained the completions: the wake belongs to the next
				// poll. Swallowed here, it left the next poll asleep for
				// its whole wait with every worker blocked on a full
				// r.done (a stall of up to a second, one run in two of
				// hookline bench).
				r.poke()
			default:
				cancel()
			}
		case <-stop:
		}
	}()

	fetches := r.sess.PollRecords(pollCtx, 2*r.cfg.MaxInFlight)
	// Rebalances wait from here to AllowRebalance: every assignment or
	// revocation queued so far came before these records.
	defer r.sess.AllowRebalance()
	r.handleEvents()
	if fetches.IsClientClosed() {
		return
	}
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		r.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	now := r.cfg.Now()
	fetches.EachRecord(func(rec *kgo.Record) { r.take(rec, now) })
}

// take adds a polled record to its partition.
func (r *Runner) take(rec *kgo.Record, now time.Time) {
	p := r.parts[rec.Partition]
	if p == nil {
		p = r.newPartition(rec)
	}
	// Offsets skipped between polled records are commit markers and
	// aborted records: nothing to process. Counting them done keeps the
	// records on either side of a marker in one range of the done set, as
	// long as the done set has room for a range of markers alone (Kafka
	// refuses commit metadata over 4 KiB).
	if rec.Offset > p.next && (!p.done.wouldSplitRange(p.next, rec.Offset) ||
		p.done.len() < maxDoneRanges(max(rec.Offset, p.done.end())-p.watermark())) {
		p.done.addRange(p.next, rec.Offset)
	}
	p.next, p.epoch = rec.Offset+1, rec.LeaderEpoch
	if p.done.contains(rec.Offset) {
		return // its successors were committed before a restart or rebalance
	}
	it := &item{rec: rec, size: recordSize(rec), handed: p.handed[rec.Offset]}
	due := now
	if r.cfg.Due != nil {
		if d, ok := r.cfg.Due(rec); ok {
			due = d
		}
	}
	if r.cfg.Lanes != nil {
		it.lanes = r.cfg.Lanes(rec)
	}
	if len(it.lanes) == 0 {
		it.lanes = noLanes
	}
	it.outs = make([][]*kgo.Record, len(it.lanes))
	it.pending = len(it.lanes)
	p.items = append(p.items, it)
	p.sched.hold(it.size)
	for i, lane := range it.lanes {
		key := string(rec.Key)
		if lane != "" {
			key = lane + "\x00" + key
		}
		p.sched.add(&task{offset: rec.Offset, key: key, due: due, it: it, lane: i})
	}
}

// noLanes is the one lane of a record that is not split.
var noLanes = []string{""}

// recordSize is what a record costs the window.
func recordSize(rec *kgo.Record) int64 {
	n := len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// nextWait is how long the next poll may block.
func (r *Runner) nextWait() time.Duration {
	now := r.cfg.Now()
	wait := time.Second
	if r.completedWaiting() {
		if w := r.lastEnd.Add(r.cfg.FlushInterval).Sub(now); w < wait {
			wait = w
		}
	}
	for _, p := range r.parts {
		// Only a record that is not due yet needs a timer; a due record
		// that cannot start waits for a completion, which wakes the poll.
		if p.sched.canStart(now) {
			wait = 0
		}
		if due, ok := p.sched.nextDue(now); ok {
			if w := due.Sub(now); w < wait {
				wait = w
			}
		}
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return wait
}
