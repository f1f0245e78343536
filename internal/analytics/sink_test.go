package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

// newKafka starts an in-process broker with the attempts topic.
func newKafka(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultAttemptsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newProducer(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(DefaultAttemptsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// mustAttemptRecord is attemptRecord for the test goroutine.
func mustAttemptRecord(t *testing.T, run string, i int) *kgo.Record {
	t.Helper()
	r, err := attemptRecord(run, i)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// attemptRecord is the attempts-topic record of attempt i of a run.
func attemptRecord(run string, i int) (*kgo.Record, error) {
	now := time.Now().UTC()
	outcome, class := processors.OutcomeDelivered, processors.ClassNone
	if i%7 == 0 {
		outcome, class = processors.OutcomeRetry, processors.ClassHTTP5xx
	}
	a := processors.Attempt{
		AttemptID:    fmt.Sprintf("%s/events/0/%d/ep-%d", run, i, i%5),
		EventID:      fmt.Sprintf("%s-e%d", run, i),
		EndpointID:   fmt.Sprintf("ep-%d", i%5),
		Tenant:       fmt.Sprintf("t%d", i%2),
		EventType:    "order.created",
		Attempt:      1,
		Tier:         "events",
		Outcome:      outcome,
		StatusCode:   200,
		ErrorClass:   class,
		LatencyMS:    float64(i%100) + 0.5,
		StartedAt:    now.Add(-50 * time.Millisecond),
		FinishedAt:   now,
		FirstAttempt: now.Add(-50 * time.Millisecond),
	}
	return a.Record(DefaultAttemptsTopic)
}

func produce(ctx context.Context, cl *kgo.Client, rs ...*kgo.Record) error {
	return cl.ProduceSync(ctx, rs...).FirstErr()
}

// testLogger sends the sink's logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startSink runs a sink until the test ends and checks that it stops cleanly.
func startSink(t *testing.T, cfg SinkConfig) *Sink {
	t.Helper()
	cfg.Logger = testLogger(t)
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sink run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sink did not stop within 30s of cancel")
		}
	})
	return s
}

// committed sums the committed offsets of a group on the attempts topic.
func committed(ctx context.Context, brokers []string, group string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == DefaultAttemptsTopic && o.Err == nil {
			sum += o.At
		}
	})
	return sum, nil
}

func TestSinkLandsEveryAttemptOnce(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx := t.Context()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	brokers := newKafka(t)
	prod := newProducer(t, brokers)

	const n = 3000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, mustAttemptRecord(t, "once", i))
	}
	recs = append(recs, &kgo.Record{Key: []byte("ep-x"), Value: []byte(`{"v":1,"attempt_id":`)})
	if err := produce(ctx, prod, recs...); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	startSink(t, SinkConfig{Brokers: brokers, Conn: conn, Database: db, BatchRows: 500, BatchAge: 100 * time.Millisecond, Registerer: reg})

	count := func(q string) uint64 {
		v, err := queryUint64(ctx, conn, fmt.Sprintf(q, db))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitFor(t, time.Minute, "all attempts and the bad record land and are committed", func() (bool, string) {
		rows, rejected := count("SELECT count() FROM %s.attempts FINAL"), count("SELECT count() FROM %s.attempts_rejected")
		off, err := committed(ctx, brokers, DefaultSinkGroup)
		if err != nil {
			return false, err.Error()
		}
		return rows == n && rejected == 1 && off == n+1, fmt.Sprintf("rows %d rejected %d committed %d", rows, rejected, off)
	})
	if got := count("SELECT count() FROM %s.attempts"); got != n {
		t.Errorf("raw rows %d, want %d: a batch was written twice in a clean run", got, n)
	}
	if got := metricValue(t, reg, "hookline_sink_rows_written_total"); got != n {
		t.Errorf("rows written metric %v, want %d", got, n)
	}
	if got := metricValue(t, reg, "hookline_sink_rejected_total"); got != 1 {
		t.Errorf("rejected metric %v, want 1", got)
	}
	if got := metricValue(t, reg, "hookline_sink_batch_seconds"); got < float64(n)/500 {
		t.Errorf("batch histogram has %v observations, want at least %d", got, n/500)
	}

	// A second group reads the whole topic again: every batch is replayed.
	// (Background merges may already collapse copies, so the raw count is
	// no measure of the replay; its metric and commits are.)
	replayReg := prometheus.NewRegistry()
	startSink(t, SinkConfig{Brokers: brokers, Conn: conn, Database: db, Group: "hookline-sink-replay", BatchRows: 700,
		BatchAge: 100 * time.Millisecond, Registerer: replayReg})
	waitFor(t, time.Minute, "the replay is written", func() (bool, string) {
		written := metricValue(t, replayReg, "hookline_sink_rows_written_total")
		off, err := committed(ctx, brokers, "hookline-sink-replay")
		if err != nil {
			return false, err.Error()
		}
		return written == n && off == n+1, fmt.Sprintf("replayed rows %v committed %d", written, off)
	})
	if got := count("SELECT count() FROM %s.attempts FINAL"); got != n {
		t.Errorf("rows with FINAL after replay %d, want %d", got, n)
	}
	if got := count("SELECT uniqExactMerge(attempts) FROM %s.attempts_1m"); got != n {
		t.Errorf("rollup attempts after replay %d, want %d", got, n)
	}
	// A merge collapses the copies for good. OPTIMIZE is a no-op while a
	// background merge holds the parts, so ask until it has happened.
	waitFor(t, time.Minute, "a merge collapses the replayed rows", func() (bool, string) {
		if err := conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.attempts FINAL", db)); err != nil {
			return false, err.Error()
		}
		raw := count("SELECT count() FROM %s.attempts")
		return raw == n, fmt.Sprintf("raw rows %d", raw)
	})
}

// TestSinkCommitsOnlyWhatClickHouseAccepted runs without a server: every
// insert fails, so nothing may be committed, and the lag must grow.
func TestSinkCommitsOnlyWhatClickHouseAccepted(t *testing.T) {
	ctx := t.Context()
	brokers := newKafka(t)
	prod := newProducer(t, brokers)
	for i := range 10 {
		if err := produce(ctx, prod, mustAttemptRecord(t, "down", i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	reg := prometheus.NewRegistry()
	s, err := NewSink(SinkConfig{Brokers: brokers, Conn: conn, Database: "hookline", BatchAge: 10 * time.Millisecond,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, ShutdownGrace: 100 * time.Millisecond, Registerer: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	waitFor(t, 30*time.Second, "inserts fail and are retried", func() (bool, string) {
		errs := metricValue(t, reg, "hookline_sink_insert_errors_total")
		return errs >= 3, fmt.Sprintf("insert errors %v", errs)
	})
	start := metricValue(t, reg, "hookline_sink_lag_seconds")
	waitFor(t, 30*time.Second, "lag grows while the batch is held", func() (bool, string) {
		lag := metricValue(t, reg, "hookline_sink_lag_seconds")
		return lag > start && lag > 0, fmt.Sprintf("lag %v (was %v)", lag, start)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sink did not stop")
	}
	if off, err := committed(ctx, brokers, DefaultSinkGroup); err != nil || off != 0 {
		t.Fatalf("committed offsets sum %d (err %v) although ClickHouse accepted nothing", off, err)
	}
	if got := metricValue(t, reg, "hookline_sink_rows_written_total"); got != 0 {
		t.Errorf("rows written %v, want 0", got)
	}
}

// privateClickHouse is a ClickHouse server of the test's own, on free ports
// and in a directory of its own (deploy/clickhouse/clickhouse.sh with
// HOOKLINE_CH_DIR), which the test may kill and start again without
// touching any other server, such as one already answering on 9000.
type privateClickHouse struct {
	addr string
	env  []string
}

func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	dir, err := os.MkdirTemp("", "hookline-ch-private-")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	p := &privateClickHouse{
		addr: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		env: append(os.Environ(), "HOOKLINE_CH_DIR="+dir, fmt.Sprintf("HOOKLINE_CH_PORT=%d", ports[0]),
			fmt.Sprintf("HOOKLINE_CH_HTTP_PORT=%d", ports[1]), fmt.Sprintf("HOOKLINE_CH_INTERSERVER_PORT=%d", ports[2])),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.script(ctx, "stop"); err != nil {
			t.Errorf("stop the private clickhouse: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.script(ctx, "start"); err != nil {
		if os.Getenv("HOOKLINE_REQUIRE_CLICKHOUSE") != "1" {
			t.Skipf("cannot start a private clickhouse server: %v", err)
		}
		t.Fatal(err)
	}
	return p
}

// script runs deploy/clickhouse/clickhouse.sh cmd on the private server.
func (p *privateClickHouse) script(ctx context.Context, cmd string) error {
	c := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "deploy", "clickhouse", "clickhouse.sh"), cmd)
	c.Env = p.env
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("clickhouse.sh %s: %w\n%s", cmd, err, out)
	}
	return nil
}

func (p *privateClickHouse) conn(t *testing.T) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := Open(ctx, ConnOptions{Addr: p.addr})
	if err != nil {
		t.Fatalf("connect to the private clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// freePorts returns n ports for the private server: testenv.FreePort
// says why they are not ones the kernel picked for 127.0.0.1:0.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testenv.FreePort(t)
	}
	return ports
}

// outageDuration is how long the outage test keeps ClickHouse down:
// $HOOKLINE_TEST_CLICKHOUSE_OUTAGE (a Go duration), 60s by default.
func outageDuration(t *testing.T) time.Duration {
	v := os.Getenv("HOOKLINE_TEST_CLICKHOUSE_OUTAGE")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("HOOKLINE_TEST_CLICKHOUSE_OUTAGE=%q: want a positive Go duration", v)
	}
	return d
}

// TestSinkSurvivesClickHouseOutage kills a ClickHouse server while
// attempts flow, keeps it down, starts it again and checks that every
// attempt landed exactly once and that the lag rose and came back down.
// The server is the test's own (startPrivateClickHouse): any other server,
// one on 9000 included, is left alone.
func TestSinkSurvivesClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test is long")
	}
	ch := startPrivateClickHouse(t)
	conn := ch.conn(t)
	db := testDatabase(t, conn)
	outage := outageDuration(t)
	ctx := t.Context()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}

	brokers := newKafka(t)
	prod := newProducer(t, brokers)
	reg := prometheus.NewRegistry()
	startSink(t, SinkConfig{Brokers: brokers, Conn: conn, Database: db, BatchRows: 200, BatchAge: 200 * time.Millisecond,
		InsertTimeout: 5 * time.Second, RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second, Registerer: reg})

	// Attempts flow for the whole test: 20 every 50 ms.
	var produced atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var produceErr error
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var rs []*kgo.Record
			base := int(produced.Load())
			for i := range 20 {
				r, err := attemptRecord("outage", base+i)
				if err != nil {
					produceErr = err
					return
				}
				rs = append(rs, r)
			}
			if err := produce(ctx, prod, rs...); err != nil {
				produceErr = err
				return
			}
			produced.Add(int64(len(rs)))
		}
	})
	stopProducing := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopProducing)

	landed := func() (uint64, error) {
		return queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.attempts FINAL", db))
	}
	waitFor(t, time.Minute, "first rows land", func() (bool, string) {
		n, err := landed()
		return err == nil && n > 0, fmt.Sprintf("rows %d err %v", n, err)
	})

	if err := ch.script(ctx, "kill"); err != nil {
		t.Fatal(err)
	}
	t.Logf("clickhouse killed; down for %s with %d attempts produced", outage, produced.Load())
	var maxLag float64
	downUntil := time.Now().Add(outage)
	tick := time.NewTicker(100 * time.Millisecond)
	for time.Now().Before(downUntil) {
		<-tick.C
		maxLag = max(maxLag, metricValue(t, reg, "hookline_sink_lag_seconds"))
	}
	tick.Stop()
	if err := ch.script(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	t.Logf("clickhouse back; max lag during outage %.1fs, insert errors %v", maxLag, metricValue(t, reg, "hookline_sink_insert_errors_total"))
	if maxLag < outage.Seconds()/2 {
		t.Errorf("lag peaked at %.1fs during a %s outage; want it to grow with the outage", maxLag, outage)
	}
	if metricValue(t, reg, "hookline_sink_insert_errors_total") == 0 {
		t.Error("no insert error counted during the outage")
	}

	// Keep attempts flowing a little after the restart, then drain.
	waitFor(t, time.Minute, "rows land again after the restart", func() (bool, string) {
		n, err := landed()
		return err == nil && metricValue(t, reg, "hookline_sink_lag_seconds") < 5, fmt.Sprintf("rows %d err %v", n, err)
	})
	stopProducing()
	if produceErr != nil {
		t.Fatalf("produce: %v", produceErr)
	}
	want := uint64(produced.Load())
	waitFor(t, 2*time.Minute, "every produced attempt landed", func() (bool, string) {
		n, err := landed()
		return err == nil && n == want, fmt.Sprintf("rows %d of %d, err %v", n, want, err)
	})
	distinct, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT uniqExact(attempt_id) FROM %s.attempts", db))
	if err != nil {
		t.Fatal(err)
	}
	if distinct != want {
		t.Errorf("distinct attempt ids %d, want %d", distinct, want)
	}
	raw, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.attempts", db))
	if err != nil {
		t.Fatal(err)
	}
	testreport.Figures(t, "clickhouse outage of %v: attempts sent %d, rows landed %d (distinct), lost %d, rows before collapsing %d (re-inserted batches %d), max lag %.1fs",
		outage, want, distinct, int64(want)-int64(distinct), raw, int64(raw)-int64(distinct), maxLag)
	rollup, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT uniqExactMerge(attempts) FROM %s.attempts_1m", db))
	if err != nil {
		t.Fatal(err)
	}
	if rollup != want {
		t.Errorf("rollup attempts %d, want %d", rollup, want)
	}
	waitFor(t, 30*time.Second, "lag back to zero", func() (bool, string) {
		lag := metricValue(t, reg, "hookline_sink_lag_seconds")
		return lag == 0, fmt.Sprintf("lag %v", lag)
	})
}
