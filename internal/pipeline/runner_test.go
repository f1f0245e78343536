package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The runner tests run in a synctest bubble (synctest.Test), on a cluster
// whose network is in memory: a goroutine blocked on loopback TCP is not
// durably blocked, so the bubble's clock could never advance. In the bubble,
// every timer, sleep and deadline (the runner's polls and flushes, the
// group's session and rebalance timeouts, a test's wait for duplicates) is
// virtual: it fires as soon as every goroutine is blocked, and no test waits
// for real time.

// testCluster is a kfake cluster on a virtual network.
type testCluster struct {
	*kfake.Cluster
	net *kfake.VirtualNetwork
}

// opts are the client options that reach the cluster.
func (c *testCluster) opts(more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.Dialer(c.net.DialContext)}, more...)
}

// newCluster starts a cluster for a test in a synctest bubble; it is closed
// at the end of the test.
func newCluster(t *testing.T, partitions int32, topics ...string) *testCluster {
	t.Helper()
	// The port is only a name on the in-memory network. Nothing listens on
	// port 1 of the host: a client left without the virtual dialer fails
	// instead of reaching a real broker on the default port, 9092.
	vn := new(kfake.VirtualNetwork)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(1), kfake.ListenFn(vn.Listen),
		kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &testCluster{Cluster: c, net: vn}
}

func produce(t *testing.T, c *testCluster, rs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readCommitted reads topic until want records arrived or the (virtual)
// deadline passed.
func readCommitted(t *testing.T, c *testCluster, topic string, want int, within time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(c.opts(kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	// Anything beyond want would be a duplicate: give it a moment to show.
	// The moment is virtual: it ends once every goroutine is blocked and
	// 300ms of the bubble's clock have passed, so whatever the runner would
	// produce by then has been produced, however loaded the machine is.
	extra, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(extra).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	return got
}

func startRunner(t *testing.T, cfg RunnerConfig) (*Runner, func()) {
	t.Helper()
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// A bubble ends only once its goroutines have: a test that fails before
	// it stops its runner stops it on cleanup.
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	t.Cleanup(stop)
	return r, stop
}

// waitUntil polls cond until it holds or the bubble's clock passed within;
// it reports whether cond held. Its sleeps are virtual.
func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// copyStage forwards every record to topic "out" on the same partition and
// remembers the order in which each key was processed.
type copyStage struct {
	mu    sync.Mutex
	order map[string][]int
}

func (s *copyStage) Process(_ context.Context, r *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
	// Not a wait: a random processing time, so that records complete out
	// of order (in a bubble, goroutines wake in the order of their virtual
	// sleeps).
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	n, _ := strconv.Atoi(string(r.Value))
	s.mu.Lock()
	s.order[string(r.Key)] = append(s.order[string(r.Key)], n)
	s.mu.Unlock()
	return []*kgo.Record{{Topic: "out", Partition: r.Partition, Key: r.Key, Value: r.Value}}, nil
}

func TestRunnerDeliversEachRecordOnceInKeyOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, "in", "out")
		const n, keys = 3000, 30
		var rs []*kgo.Record
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("k", i%keys)), Value: []byte(strconv.Itoa(i))})
		}
		produce(t, c, rs...)

		stage := &copyStage{order: make(map[string][]int)}
		_, stop := startRunner(t, RunnerConfig{
			Name: "test", Topic: "in", Group: "g", TransactionalID: "tx-1",
			ClientOpts: c.opts(),
			Stage:      stage, Concurrency: 8, MaxInFlight: 200,
		})
		got := readCommitted(t, c, "out", n, 30*time.Second)
		stop()

		seen := make(map[string]int)
		for _, r := range got {
			seen[string(r.Value)]++
		}
		for i := range n {
			if k := seen[strconv.Itoa(i)]; k != 1 {
				t.Fatalf("record %d is in the output %d times, want once", i, k)
			}
		}
		for key, order := range stage.order {
			for i := 1; i < len(order); i++ {
				if order[i] < order[i-1] {
					t.Fatalf("key %s processed out of order: %d after %d", key, order[i], order[i-1])
				}
			}
		}
	})
}

func TestRunnerNeverStartsARecordBeforeItIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, "in", "out")
		start := time.Now()
		var rs []*kgo.Record
		for i := range 40 {
			due := start.Add(time.Duration(100+10*i) * time.Millisecond)
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(strconv.Itoa(i)),
				Headers: []kgo.RecordHeader{{Key: "due", Value: []byte(strconv.FormatInt(due.UnixMilli(), 10))}}})
		}
		produce(t, c, rs...)

		var mu sync.Mutex
		early := 0
		stage := StageFunc(func(_ context.Context, r *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
			due, _ := strconv.ParseInt(string(r.Headers[0].Value), 10, 64)
			if time.Now().UnixMilli() < due {
				mu.Lock()
				early++
				mu.Unlock()
			}
			return []*kgo.Record{{Topic: "out", Partition: r.Partition, Value: r.Value}}, nil
		})
		_, stop := startRunner(t, RunnerConfig{
			Name: "tier", Topic: "in", Group: "g", TransactionalID: "tx-2",
			ClientOpts: c.opts(),
			Stage:      stage,
			Due: func(r *kgo.Record) (time.Time, bool) {
				ms, err := strconv.ParseInt(string(r.Headers[0].Value), 10, 64)
				return time.UnixMilli(ms), err == nil
			},
		})
		got := readCommitted(t, c, "out", 40, 20*time.Second)
		stop()
		if len(got) != 40 {
			t.Fatalf("got %d records, want 40", len(got))
		}
		if early > 0 {
			t.Fatalf("%d records were processed before their due time", early)
		}
	})
}

// A runner stopped and replaced by another in the same group loses nothing
// and commits nothing twice.
func TestRunnerHandsOverWithoutLossOrDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4, "in", "out")
		const n = 2000
		var rs []*kgo.Record
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("k", i%40)), Value: []byte(strconv.Itoa(i))})
		}
		produce(t, c, rs...)
		cfg := func(id string) RunnerConfig {
			return RunnerConfig{
				Name: "test", Topic: "in", Group: "g", TransactionalID: id,
				ClientOpts: c.opts(),
				Stage:      &copyStage{order: make(map[string][]int)}, Concurrency: 4, MaxInFlight: 50,
			}
		}
		r1, stop1 := startRunner(t, cfg("tx-a"))
		waitUntil(10*time.Second, func() bool { return r1.Stats().Processed.Load() >= n/4 })
		_, stop2 := startRunner(t, cfg("tx-b"))
		stop1()
		got := readCommitted(t, c, "out", n, 30*time.Second)
		stop2()
		seen := make(map[string]int)
		for _, r := range got {
			seen[string(r.Value)]++
		}
		for i := range n {
			if k := seen[strconv.Itoa(i)]; k != 1 {
				t.Fatalf("record %d is in the output %d times, want once", i, k)
			}
		}
	})
}

// A record that hangs holds back only its own key: the records after it are
// delivered and committed. When its owner dies, the next owner processes the
// hung record and skips the ones already committed: each is in the output
// exactly once.
func TestRunnerSlowRecordHoldsOnlyItsKeyAndNothingRepeatsAfterHandOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, "in", "out")
		const n = 500
		var rs []*kgo.Record
		rs = append(rs, &kgo.Record{Topic: "in", Key: []byte("slow"), Value: []byte("0")})
		for i := 1; i < n; i++ {
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("k", i%20)), Value: []byte(strconv.Itoa(i))})
		}
		produce(t, c, rs...)

		release := make(chan struct{})
		hanging := StageFunc(func(ctx context.Context, r *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
			if string(r.Key) == "slow" {
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return []*kgo.Record{{Topic: "out", Partition: r.Partition, Key: r.Key, Value: r.Value}}, nil
		})
		cfg := RunnerConfig{
			Name: "test", Topic: "in", Group: "g", TransactionalID: "tx-slow-1",
			ClientOpts: c.opts(),
			Stage:      hanging, Concurrency: 8, MaxInFlight: 100, Grace: 200 * time.Millisecond,
		}
		_, stop1 := startRunner(t, cfg)
		got := readCommitted(t, c, "out", n-1, 20*time.Second)
		if len(got) != n-1 {
			t.Fatalf("with one record hanging, %d of %d other records were committed", len(got), n-1)
		}
		stop1() // the hung record is abandoned, uncommitted
		close(release)

		cfg.TransactionalID = "tx-slow-2"
		_, stop2 := startRunner(t, cfg)
		got = readCommitted(t, c, "out", n, 20*time.Second)
		stop2()
		seen := make(map[string]int)
		for _, r := range got {
			seen[string(r.Value)]++
		}
		for i := range n {
			if k := seen[strconv.Itoa(i)]; k != 1 {
				t.Fatalf("record %d is in the output %d times, want once", i, k)
			}
		}
	})
}

// A crash of the embedded broker can tear a transaction: its successors are
// committed, its offsets are not. The next owner finds those successors in
// the stage's outputs (from the offsets the last commit recorded), hands them
// to the stage as handedOff, and nothing is in the output twice.
func TestRunnerDoesNotHandOnAgainWhatATornTransactionCommitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, "in", "out")
		const first, more = 100, 50
		input := func(from, to int) []*kgo.Record {
			var rs []*kgo.Record
			for i := from; i < to; i++ {
				rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("k", i%10)), Value: []byte(strconv.Itoa(i))})
			}
			return rs
		}
		var (
			mu     sync.Mutex
			handed = make(map[int64]int) // source offset -> handed-off successors seen
		)
		copyUnlessHanded := StageFunc(func(_ context.Context, r *kgo.Record, hs []*kgo.Record) ([]*kgo.Record, error) {
			if len(hs) > 0 {
				mu.Lock()
				handed[r.Offset] += len(hs)
				mu.Unlock()
				return nil, nil
			}
			return []*kgo.Record{{Topic: "out", Partition: r.Partition, Key: r.Key, Value: r.Value}}, nil
		})
		cfg := RunnerConfig{
			Name: "test", Topic: "in", Group: "g", TransactionalID: "tx-torn-1",
			ClientOpts: c.opts(),
			Stage:      copyUnlessHanded, Outputs: []string{"out"},
		}
		produce(t, c, input(0, first)...)
		r1, stop1 := startRunner(t, cfg)
		if got := readCommitted(t, c, "out", first, 20*time.Second); len(got) != first {
			t.Fatalf("first owner: %d records in the output, want %d", len(got), first)
		}
		waitUntil(10*time.Second, func() bool { return r1.Stats().Processed.Load() >= first })
		stop1()

		// The torn transaction: successors of input offsets 100, 101 and 120
		// committed, with no offset commit.
		produce(t, c, input(first, first+more)...)
		torn := []int64{100, 101, 120}
		tx, err := kgo.NewClient(c.opts(kgo.TransactionalID("tx-tearer"))...)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		ctx := context.Background()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, o := range torn {
			// Like a tier record's successor, it keeps the source of the
			// record it came from ahead of its own: its own is the last.
			rec := &kgo.Record{Topic: "out", Partition: 0, Value: []byte(strconv.FormatInt(o, 10)),
				Headers: []kgo.RecordHeader{
					{Key: HeaderSource, Value: []byte("upstream/0/" + strconv.FormatInt(o, 10))},
					{Key: HeaderSource, Value: []byte("in/0/" + strconv.FormatInt(o, 10))},
				}}
			if err := tx.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}

		cfg.TransactionalID = "tx-torn-2"
		_, stop2 := startRunner(t, cfg)
		got := readCommitted(t, c, "out", first+more, 20*time.Second)
		stop2()
		seen := make(map[string]int)
		for _, r := range got {
			seen[string(r.Value)]++
		}
		for i := range first + more {
			if k := seen[strconv.Itoa(i)]; k != 1 {
				t.Errorf("record %d is in the output %d times, want once", i, k)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(handed) != len(torn) {
			t.Errorf("handed-off successors seen for offsets %v, want one for each of %v", handed, torn)
		}
		for _, o := range torn {
			if handed[o] != 1 {
				t.Errorf("offset %d: %d handed-off successors, want 1", o, handed[o])
			}
		}
	})
}

// A partition lost and assigned again before the loop saw the loss: the
// records of the new assignment, polled after both, must survive the late
// handling of the loss, and the partition starts from what the assignment
// loaded. (Before, the loss was handled after the records were taken and
// dropped them; the next commit then moved the offset past them.)
func TestRunnerAppliesALossAndAReassignmentBeforeTheirRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, "in")
		r := idleRunner(t, c, "tx-order")
		rec := func(p int32, o int64) *kgo.Record {
			return &kgo.Record{Topic: "in", Partition: p, Offset: o, Key: []byte(fmt.Sprint("k", o))}
		}
		now := time.Now()
		r.take(rec(0, 10), now) // held from the first assignment
		r.take(rec(1, 20), now)

		var done doneSet
		done.add(6)
		r.release(r.sess.Client(), map[string][]int32{"in": {0}})
		r.queue(partEvent{assigned: true, ps: []int32{0}, starts: map[int32]*partitionStart{0: {done: done}}})

		// The next poll: the queued events first, then its records, fetched
		// from the committed offset 5.
		r.handleEvents()
		for _, o := range []int64{5, 6, 7} {
			r.take(rec(0, o), now)
		}
		p := r.parts[0]
		if p == nil {
			t.Fatal("partition 0 forgotten after it was assigned again")
		}
		var held []int64
		for _, it := range p.items {
			held = append(held, it.rec.Offset)
		}
		if fmt.Sprint(held) != "[5 7]" || p.committedMark != 5 {
			t.Errorf("partition 0 holds %v from mark %d, want [5 7] (6 is done) from 5", held, p.committedMark)
		}
		if q := r.parts[1]; q == nil || len(q.items) != 1 {
			t.Errorf("partition 1, not revoked, lost its record")
		}
	})
}

// The loss of a partition that the loop has not handled yet is applied
// before the records of the poll that follows it are taken, not after.
func TestRunnerHandlesQueuedRebalancesBeforeTakingAPollsRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, "in")
		r := idleRunner(t, c, "tx-order-poll")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for ctx.Err() == nil && !r.Ready() {
			r.pollOnce(ctx)
		}
		// A loss (and the reassignment after it) queued by the callbacks while
		// the loop was busy, then records.
		r.eventsMu.Lock()
		r.events = append(r.events, partEvent{ps: []int32{0}}, partEvent{assigned: true, ps: []int32{0}})
		r.eventsMu.Unlock()
		produce(t, c, &kgo.Record{Topic: "in", Value: []byte("a")}, &kgo.Record{Topic: "in", Value: []byte("b")})
		for ctx.Err() == nil && (r.parts[0] == nil || len(r.parts[0].items) < 2) {
			r.pollOnce(ctx)
		}
		if p := r.parts[0]; p == nil || len(p.items) != 2 {
			t.Fatalf("the records polled after a queued loss were dropped by it")
		}
	})
}

// idleRunner is a runner on topic "in" whose stage does nothing, for tests
// that drive its loop by hand; it is closed at the end of the test. It has
// joined its group and applied its assignment: the assignment the group
// makes in the background would otherwise land among the events a test
// queues, at a moment of its own, and reset the partitions the test set up.
// (In the bubble, no timer of the group fires until the test blocks.)
func idleRunner(t *testing.T, c *testCluster, txnID string) *Runner {
	t.Helper()
	r, err := NewRunner(RunnerConfig{
		Name: "test", Topic: "in", Group: "g", TransactionalID: txnID,
		ClientOpts: c.opts(),
		Stage:      StageFunc(func(context.Context, *kgo.Record, []*kgo.Record) ([]*kgo.Record, error) { return nil, nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.sess.Close)
	if !waitUntil(10*time.Second, r.Ready) {
		t.Fatal("the runner was not assigned its partitions")
	}
	r.handleEvents()
	return r
}

// A record that is not due holds back only its own key: the due records of
// other keys behind it in the partition are processed, and the partition
// keeps being read past it.
func TestRunnerRecordNotDueHoldsOnlyItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, "in", "out")
		dueHeader := func(d time.Time) []kgo.RecordHeader {
			return []kgo.RecordHeader{{Key: "due", Value: []byte(strconv.FormatInt(d.UnixMilli(), 10))}}
		}
		later := time.Now().Add(time.Hour)
		rs := []*kgo.Record{
			{Topic: "in", Key: []byte("a"), Value: []byte("a0"), Headers: dueHeader(later)},
			{Topic: "in", Key: []byte("a"), Value: []byte("a1"), Headers: dueHeader(time.Now())},
		}
		const others = 50
		for i := range others {
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("b", i%7)), Value: []byte(fmt.Sprint("b", i)), Headers: dueHeader(time.Now())})
		}
		produce(t, c, rs...)
		var mu sync.Mutex
		var processed []string
		stage := StageFunc(func(_ context.Context, r *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
			mu.Lock()
			processed = append(processed, string(r.Value))
			mu.Unlock()
			return []*kgo.Record{{Topic: "out", Partition: r.Partition, Value: r.Value}}, nil
		})
		_, stop := startRunner(t, RunnerConfig{
			Name: "tier", Topic: "in", Group: "g", TransactionalID: "tx-not-due",
			ClientOpts: c.opts(),
			Stage:      stage, Concurrency: 4, MaxInFlight: 20,
			Due: func(r *kgo.Record) (time.Time, bool) {
				ms, err := strconv.ParseInt(string(r.Headers[0].Value), 10, 64)
				return time.UnixMilli(ms), err == nil
			},
		})
		got := readCommitted(t, c, "out", others, 20*time.Second)
		stop()
		if len(got) != others {
			t.Fatalf("%d of the %d due records of other keys came out behind a record due in an hour", len(got), others)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, v := range processed {
			if v == "a0" || v == "a1" {
				t.Fatalf("record %s of the key whose head is not due was processed", v)
			}
		}
	})
}

// The lanes of a record run independently: a lane that hangs holds only
// the same lane of later records of its key, and the record commits once
// every lane has completed, with the successors of all of them.
func TestRunnerLanesOfARecordAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, "in", "out")
		produce(t, c,
			&kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte("0")},
			&kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte("1")},
		)
		release := make(chan struct{})
		fast1 := make(chan struct{}) // closed once lane fast of record 1 ran
		var mu sync.Mutex
		var ran []string
		stage := StageFunc(func(ctx context.Context, r *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
			lane := Lane(ctx)
			if lane == "slow" && string(r.Value) == "0" {
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			mu.Lock()
			ran = append(ran, lane+string(r.Value))
			if lane+string(r.Value) == "fast1" {
				close(fast1)
			}
			mu.Unlock()
			return []*kgo.Record{{Topic: "out", Partition: r.Partition, Value: []byte(lane + string(r.Value))}}, nil
		})
		_, stop := startRunner(t, RunnerConfig{
			Name: "lanes", Topic: "in", Group: "g", TransactionalID: "tx-lanes",
			ClientOpts: c.opts(),
			Stage:      stage,
			Lanes:      func(*kgo.Record) []string { return []string{"fast", "slow"} },
		})
		defer stop()
		select {
		case <-fast1:
		case <-time.After(20 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the fast lane of the key's second record did not run while the slow lane of its first hung: %v", ran)
		}
		// Let whatever the runner would start meanwhile start.
		synctest.Wait()
		mu.Lock()
		got := slices.Clone(ran)
		mu.Unlock()
		if slices.Contains(got, "slow1") {
			t.Fatalf("lane slow of record 1 ran before lane slow of record 0: %v", got)
		}
		close(release)
		out := readCommitted(t, c, "out", 4, 20*time.Second)
		var vals []string
		for _, r := range out {
			vals = append(vals, string(r.Value))
		}
		slices.Sort(vals)
		if !slices.Equal(vals, []string{"fast0", "fast1", "slow0", "slow1"}) {
			t.Fatalf("committed %v, want each lane of each record once", vals)
		}
		mu.Lock()
		defer mu.Unlock()
		if i, j := slices.Index(ran, "slow0"), slices.Index(ran, "slow1"); i > j {
			t.Fatalf("lane slow ran out of key order: %v", ran)
		}
	})
}
