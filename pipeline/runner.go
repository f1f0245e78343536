package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stage processes one consumed record and returns the records it produces.
// An error means the record was not processed (only on cancellation); the
// runner does not commit past it.
type Stage interface {
	Process(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error)
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error)

// Process calls f.
func (f StageFunc) Process(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error) {
	return f(ctx, r)
}

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
	// Outputs are the topics the stage hands records on to (next tier,
	// DLQ), each in the partition number of the record consumed. A new
	// owner of a partition reads them for successors a crash left committed
	// without their offsets (see HandedOff). Attempt records are not
	// outputs: one does not mean its record moved on.
	Outputs []string
	// Due returns when a record may be processed; nil means at once.
	Due func(*kgo.Record) (time.Time, bool)
	// Concurrency bounds the records processed at once per partition.
	Concurrency int
	// MaxInFlight bounds the records held per partition.
	MaxInFlight int
	// FlushInterval is how long completed records may wait for their commit.
	FlushInterval time.Duration
	// Grace bounds how long shutdown waits for in-flight records.
	Grace time.Duration
	// TxnTimeout bounds producing a transaction's records and ending it;
	// longer than a broker failover, shorter than the transaction timeout.
	TxnTimeout time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

func (c *RunnerConfig) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 50 * time.Millisecond
	}
	if c.Grace <= 0 {
		c.Grace = 15 * time.Second
	}
	if c.TxnTimeout <= 0 {
		c.TxnTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Runner consumes one topic in a consumer group and runs a Stage on every
// record, committing successors and offsets transactionally.
type Runner struct {
	cfg  RunnerConfig
	sess *kgo.GroupTransactSession
	log  *slog.Logger

	assigned atomic.Bool
	wake     chan struct{}
	done     chan completion

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
}

// RunnerStats are counters the runner keeps for tests and the demo.
type RunnerStats struct {
	Committed atomic.Int64 // transactions committed
	Aborted   atomic.Int64 // transactions aborted
	Processed atomic.Int64 // records whose successors were committed
}

type item struct {
	rec    *kgo.Record
	key    string
	due    time.Time
	done   bool
	out    []*kgo.Record
	handed []*kgo.Record // see HandedOff
}

type partition struct {
	id    int32
	items []*item // polled, successors not yet committed; offset order
	// waiting holds the next record of each key that is neither running nor
	// queued behind a running record, in offset order; the rest of a key's
	// records wait in its queue. Dispatch therefore never walks past records
	// of busy keys.
	waiting []*item
	keys    map[string]*keyState
	running int
	paused  bool

	next  int64   // the offset after the last polled record
	epoch int32   // leader epoch of the last polled record
	done  doneSet // offsets above the watermark whose successors are committed

	committedMark int64
	committedDone doneSet
	// outNext are the outputs' offsets after the last committed successor
	// (recorded in the commit metadata); handed are successors committed
	// by a torn transaction, by source offset (see HandedOff).
	outNext []int64
	handed  map[int64][]*kgo.Record
}

// watermark is the offset to commit: the first record whose successors are
// not committed yet.
func (p *partition) watermark() int64 {
	if len(p.items) > 0 {
		return p.items[0].rec.Offset
	}
	return p.next
}

// keyState tracks one key of a partition: its record running or waiting,
// and the records queued behind it, in offset order.
type keyState struct {
	running   bool
	inWaiting bool
	queue     []*item
}

// enqueue adds a polled record: to waiting when its key is idle, else to the
// key's queue.
func (p *partition) enqueue(it *item) {
	ks := p.keys[it.key]
	if ks == nil {
		ks = &keyState{}
		p.keys[it.key] = ks
	}
	if ks.running || ks.inWaiting {
		ks.queue = append(ks.queue, it)
		return
	}
	ks.inWaiting = true
	p.waiting = append(p.waiting, it)
}

// finished frees a key after its record ran and moves the key's next record
// to waiting. A record that was not processed goes back first.
func (p *partition) finished(it *item, again bool) {
	ks := p.keys[it.key]
	ks.running = false
	next := it
	if !again {
		if len(ks.queue) == 0 {
			delete(p.keys, it.key)
			return
		}
		next = ks.queue[0]
		ks.queue[0] = nil
		ks.queue = ks.queue[1:]
	}
	ks.inWaiting = true
	p.waiting = insertByOffset(p.waiting, next)
}

// partEvent is an assignment (with what each partition starts from) or a
// revocation or loss, as the group callbacks saw it.
type partEvent struct {
	assigned bool
	ps       []int32
	starts   map[int32]*partitionStart
}

type completion struct {
	p   *partition
	it  *item
	out []*kgo.Record
	err error
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
		cfg:   cfg,
		log:   cfg.Logger.With("stage", cfg.Name),
		wake:  make(chan struct{}, 1),
		done:  make(chan completion, 4*cfg.Concurrency),
		parts: make(map[int32]*partition),
		seeds: make(map[int32]*partitionStart),

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

// Ready reports whether the runner has joined its group and been assigned.
func (r *Runner) Ready() bool { return r.assigned.Load() }

// Stats returns the runner's counters.
func (r *Runner) Stats() *RunnerStats { return &r.stats }

// Client returns the underlying client, for lag monitoring.
func (r *Runner) Client() *kgo.Client { return r.sess.Client() }

// release resumes revoked or lost partitions at once (a pause must never
// outlive ownership) and tells the loop to forget them.
func (r *Runner) release(cl *kgo.Client, m map[string][]int32) {
	ps := m[r.cfg.Topic]
	if len(ps) == 0 {
		return
	}
	cl.ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: ps})
	r.queue(partEvent{ps: ps})
}

func (r *Runner) queue(ev partEvent) {
	r.eventsMu.Lock()
	r.events = append(r.events, ev)
	r.eventsMu.Unlock()
	r.poke()
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run processes records until ctx is done, then shuts down within Grace:
// it stops fetching, lets in-flight records finish, commits what completed,
// and leaves the group.
func (r *Runner) Run(ctx context.Context) error {
	// Records keep being processed for the grace period after ctx ends.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	defer r.sess.CloseAllowingRebalance()

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

// pollOnce polls until records arrive, a completion or revoke wakes it, or the
// next scheduled moment (a flush or a due time) comes.
func (r *Runner) pollOnce(ctx context.Context) {
	wait := r.nextWait()
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-r.wake:
			cancel()
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
	p.next, p.epoch = rec.Offset+1, rec.LeaderEpoch
	if p.done.contains(rec.Offset) {
		return // its successors were committed before a restart or rebalance
	}
	it := &item{rec: rec, key: string(rec.Key), due: now, handed: p.handed[rec.Offset]}
	if r.cfg.Due != nil {
		if due, ok := r.cfg.Due(rec); ok {
			it.due = due
		}
	}
	p.items = append(p.items, it)
	p.enqueue(it)
}

func (r *Runner) newPartition(first *kgo.Record) *partition {
	st := r.seeds[first.Partition]
	delete(r.seeds, first.Partition)
	if st == nil {
		st = &partitionStart{}
	}
	p := &partition{
		id: first.Partition, keys: make(map[string]*keyState),
		next: first.Offset, committedMark: first.Offset,
		done: st.done.clone(), committedDone: st.done,
		outNext: st.outNext, handed: st.handed,
	}
	r.parts[first.Partition] = p
	return p
}

// loadDone reads the done sets of newly assigned partitions from the
// group's committed metadata, waiting out pending transactions so that what
// it reads matches the offsets the client will fetch from.
func (r *Runner) loadDone(ctx context.Context, cl *kgo.Client, ps []int32) {
	if len(ps) == 0 {
		return
	}
	adm := kadm.NewClient(cl)
	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(time.Minute)), ctx)
	var offsets kadm.OffsetResponses
	err := backoff.Retry(func() error {
		var err error
		offsets, err = adm.FetchOffsets(kadm.RequireStable(ctx), r.cfg.Group)
		if err == nil {
			err = offsets.Error()
		}
		return err
	}, b)
	if err != nil {
		// Records completed past a held one may be processed again.
		r.log.Error("read committed done sets; records committed past a slow one may be processed again", "err", err)
		r.queue(partEvent{assigned: true, ps: ps})
		return
	}
	starts := make(map[int32]*partitionStart, len(ps))
	marks := make(map[int32]int64, len(ps))
	for _, p := range ps {
		st := &partitionStart{}
		starts[p] = st
		o, ok := offsets.Lookup(r.cfg.Topic, p)
		if !ok || o.At < 0 {
			continue
		}
		marks[p] = o.At
		if m, err := decodeCommitMeta(o.Metadata, o.At, r.outputsID); err == nil {
			st.done, st.outNext = m.done, m.outNext
		}
	}
	if err := r.audit(ctx, cl, starts, marks); err != nil {
		r.log.Warn("hand-off audit incomplete; a record whose transaction a crash tore may be handed on twice", "err", err)
	}
	for p, st := range starts {
		if n := len(st.handed); n > 0 {
			r.log.Warn("records already handed on although their offsets were not committed (a torn transaction); not handing them on again",
				"partition", p, "records", n)
		}
	}
	r.queue(partEvent{assigned: true, ps: ps, starts: starts})
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
		// Only a head that is not due yet needs a timer; a due head that
		// cannot start waits for a completion, which wakes the poll.
		if len(p.waiting) > 0 && p.waiting[0].due.After(now) {
			h := p.waiting[0]
			if w := h.due.Sub(now); w < wait {
				wait = w
			}
		}
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return wait
}

func (r *Runner) completedWaiting() bool {
	if r.doneHeld > 0 {
		return true
	}
	for _, p := range r.parts {
		if p.watermark() != p.committedMark {
			return true
		}
	}
	return false
}

// handleEvents applies the queued assignments and revocations in order.
// A revoked or lost partition's records are forgotten. A newly assigned
// partition starts over from what the assignment loaded, even if the loop
// has not seen it revoked: the records it held belong to an earlier
// generation, and kgo fetches from the committed offset again.
func (r *Runner) handleEvents() {
	r.eventsMu.Lock()
	evs := r.events
	r.events = nil
	r.eventsMu.Unlock()
	var resume []int32
	for _, ev := range evs {
		for _, id := range ev.ps {
			if p := r.parts[id]; p != nil {
				r.inflight -= p.running
				delete(r.parts, id)
			}
			delete(r.seeds, id)
			if st := ev.starts[id]; ev.assigned && st != nil {
				r.seeds[id] = st
			}
		}
		if !ev.assigned {
			resume = append(resume, ev.ps...)
		}
	}
	// The loop may have paused a partition after the callback resumed it.
	if len(resume) > 0 {
		r.sess.Client().ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}

func (r *Runner) drainCompletions() {
	for {
		select {
		case c := <-r.done:
			r.complete(c)
		default:
			return
		}
	}
}

func (r *Runner) complete(c completion) {
	if r.parts[c.p.id] != c.p {
		return // the partition was revoked or reset since; its records are forgotten
	}
	r.inflight--
	c.p.running--
	if c.err != nil {
		// Not processed (cancellation): run it again unless shutting down.
		c.p.finished(c.it, true)
		r.log.Debug("record not processed", "partition", c.p.id, "offset", c.it.rec.Offset, "err", c.err)
		return
	}
	c.p.finished(c.it, false)
	r.doneHeld++
	c.it.done = true
	c.it.out = c.out
}

func insertByOffset(list []*item, it *item) []*item {
	i := 0
	for i < len(list) && list[i].rec.Offset < it.rec.Offset {
		i++
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = it
	return list
}

func (r *Runner) dispatchAll(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := r.cfg.Now()
	var pause, resume []int32
	for _, p := range r.parts {
		r.dispatch(ctx, p, now)
		// Pause while the head is not due or the partition holds too much.
		headWaits := len(p.waiting) > 0 && p.waiting[0].due.After(now)
		// Resume a full partition only once half drained, so the next fetch
		// overlaps with the work still held.
		full := len(p.items) >= r.cfg.MaxInFlight || (p.paused && len(p.items) >= r.cfg.MaxInFlight/2)
		switch want := headWaits || full; {
		case want && !p.paused:
			p.paused = true
			pause = append(pause, p.id)
		case !want && p.paused:
			p.paused = false
			resume = append(resume, p.id)
		}
	}
	cl := r.sess.Client()
	if len(pause) > 0 {
		cl.PauseFetchPartitions(map[string][]int32{r.cfg.Topic: pause})
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}

// dispatch starts the partition's waiting records, in offset order,
// stopping at the first that is not due (a tier never runs early) or when
// the partition's concurrency is used up.
func (r *Runner) dispatch(ctx context.Context, p *partition, now time.Time) {
	n := 0
	for _, it := range p.waiting {
		if it.due.After(now) || p.running >= r.cfg.Concurrency {
			break
		}
		ks := p.keys[it.key]
		ks.inWaiting, ks.running = false, true
		p.running++
		r.inflight++
		go r.work(ctx, p, it)
		n++
	}
	clear(p.waiting[:n])
	p.waiting = p.waiting[n:]
}

func (r *Runner) work(ctx context.Context, p *partition, it *item) {
	out, err := r.cfg.Stage.Process(withHandedOff(ctx, it.handed), it.rec)
	src := []byte(sourceOf(it.rec))
	for _, o := range out {
		o.Headers = append(o.Headers, kgo.RecordHeader{Key: HeaderSource, Value: src})
	}
	r.done <- completion{p: p, it: it, out: out, err: err}
	r.poke()
}

// flushPlan is what one partition commits in the next transaction.
type flushPlan struct {
	p       *partition
	flushed []*item
	keep    []*item
	mark    int64
	done    doneSet
}

// plan picks the partition's completed records to commit: all of them, not
// only the prefix, as long as the done set stays within its budget.
func (p *partition) plan() flushPlan {
	fp := flushPlan{p: p, done: p.done.clone()}
	for _, it := range p.items {
		if it.done && (fp.done.len() < maxDoneRanges || !fp.done.wouldSplit(it.rec.Offset)) {
			fp.flushed = append(fp.flushed, it)
			fp.done.add(it.rec.Offset)
			continue
		}
		fp.keep = append(fp.keep, it)
	}
	fp.mark = p.next
	if len(fp.keep) > 0 {
		fp.mark = fp.keep[0].rec.Offset
	}
	fp.done.prune(fp.mark)
	return fp
}

// maybeFlush commits the completed records of every partition when the
// flush interval has passed (or always, when final).
func (r *Runner) maybeFlush(final bool) error {
	now := r.cfg.Now()
	if !final && now.Sub(r.lastEnd) < r.cfg.FlushInterval {
		return nil
	}
	var out []*kgo.Record
	plans := make(map[int32]flushPlan, len(r.parts))
	changed := false
	for id, p := range r.parts {
		fp := p.plan()
		plans[id] = fp
		for _, it := range fp.flushed {
			out = append(out, it.out...)
		}
		changed = changed || len(fp.flushed) > 0 || fp.mark != p.committedMark
	}
	if !changed {
		r.lastEnd = now
		return nil
	}

	committed, outNext, err := r.transact(out, plans)
	r.lastEnd = r.cfg.Now()
	if err != nil {
		return fmt.Errorf("stage %s: transactions are stuck: %w", r.cfg.Name, err)
	}
	if !committed {
		r.stats.Aborted.Add(1)
		r.log.Info("transaction aborted; records will be processed again")
		r.reset()
		return nil
	}
	r.stats.Committed.Add(1)
	r.doneHeld = 0
	for _, fp := range plans {
		for _, it := range fp.keep {
			if it.done {
				r.doneHeld++
			}
		}
		p := fp.p
		p.items, p.done = fp.keep, fp.done
		p.committedMark, p.committedDone = fp.mark, fp.done.clone()
		p.outNext = outNext[p.id]
		for o := range p.handed {
			if o < fp.mark || fp.done.contains(o) {
				delete(p.handed, o)
			}
		}
		r.stats.Processed.Add(int64(len(fp.flushed)))
	}
	return nil
}

// transact produces the successors and commits offsets and done sets in one
// transaction. It reports whether the transaction committed, and the
// outputs' offsets it recorded per partition; an error means the outcome is
// unknown or the session is unusable, and the stage must stop.
func (r *Runner) transact(out []*kgo.Record, plans map[int32]flushPlan) (bool, map[int32][]int64, error) {
	if err := r.sess.Begin(); err != nil {
		return false, nil, fmt.Errorf("begin transaction: %w", err)
	}
	// Each partition's outputs' offsets start from its last commit and move
	// past every successor this transaction produces.
	outNext := make(map[int32][]int64, len(plans))
	for id, fp := range plans {
		if len(r.cfg.Outputs) > 0 {
			outNext[id] = append([]int64(nil), fp.p.outNext...)
		}
	}
	// Produces may wait out a leader election (a broker failover takes
	// seconds), so they get their own deadline, and End always a fresh one:
	// End with an expired context returns without ending the transaction.
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
	defer cancel()
	var (
		mu      sync.Mutex
		prodErr error
	)
	for _, rec := range out {
		r.sess.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				prodErr = fmt.Errorf("produce to %s[%d]: %w", rec.Topic, rec.Partition, err)
				return
			}
			i, ok := r.outIndex[rec.Topic]
			if next := outNext[rec.Partition]; ok && i < len(next) && rec.Offset+1 > next[i] {
				next[i] = rec.Offset + 1
			}
		})
	}
	if err := r.sess.Client().Flush(ctx); err != nil {
		prodErr = errors.Join(prodErr, err)
	}
	try := kgo.TryCommit
	if prodErr != nil {
		try = kgo.TryAbort
		r.log.Warn("produce failed; aborting the transaction", "err", prodErr)
	}
	endCtx, cancelEnd := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
	defer cancelEnd()
	// kgo would commit the polled position; commit the watermark and the
	// done set instead, so a record polled but not finished is never skipped.
	endCtx = kgo.PreTxnCommitFnContext(endCtx, func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			if t.Topic != r.cfg.Topic {
				continue
			}
			for j := range t.Partitions {
				pt := &t.Partitions[j]
				fp, ok := plans[pt.Partition]
				if !ok {
					continue
				}
				mu.Lock()
				meta := commitMeta{done: fp.done, outNext: outNext[pt.Partition]}.encode(fp.mark, r.outputsID)
				mu.Unlock()
				pt.Offset, pt.LeaderEpoch, pt.Metadata = fp.mark, fp.p.epoch, &meta
			}
		}
		return nil
	})
	committed, err := r.sess.End(endCtx, try)
	if err != nil {
		// The commit may or may not have happened: the client's idea of the
		// committed offsets may be wrong either way, and processing on from
		// it could repeat committed hand-offs. Release the transaction and
		// stop the stage; a restarted process reads the true committed
		// offsets and done sets from the broker.
		r.log.Error("end transaction failed; its outcome is unknown, stopping the stage", "err", err)
		return false, nil, errors.Join(fmt.Errorf("end transaction: %w", err), r.abortOpen())
	}
	return committed && prodErr == nil, outNext, nil
}

// abortOpen ends a transaction that End left open, retrying while the
// cluster recovers. If it cannot, the session is stuck: the caller stops the
// stage so that the process restarts and fences it.
func (r *Runner) abortOpen() error {
	b := backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(2 * time.Minute))
	return backoff.RetryNotify(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TxnTimeout)
		defer cancel()
		_, err := r.sess.End(ctx, kgo.TryAbort)
		return err
	}, b, func(err error, wait time.Duration) {
		r.log.Warn("abort transaction, retrying", "err", err, "retry_in", wait)
	})
}

// reset forgets every record held: after an abort kgo rewinds to the
// committed offsets and fetches them again, and each partition starts over
// from its last committed done set. Paused partitions are resumed so the
// refetch is not stuck.
func (r *Runner) reset() {
	var resume []int32
	for id, p := range r.parts {
		r.inflight -= p.running
		if p.paused {
			resume = append(resume, id)
		}
		r.seeds[id] = &partitionStart{done: p.committedDone, outNext: p.outNext, handed: p.handed}
	}
	r.parts = make(map[int32]*partition)
	r.doneHeld = 0
	if len(resume) > 0 {
		r.sess.Client().ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: resume})
	}
}
