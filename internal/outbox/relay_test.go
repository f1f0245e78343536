package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
)

// testTable creates an outbox table of the test's own and drops it at the
// end.
func testTable(t testing.TB, dsn string) (*pgx.Conn, string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("outbox_test_%d", rand.IntN(1e9))
	if err := Migrate(t.Context(), conn, table); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(t.Context(), conn, table); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
		_ = conn.Close(context.Background())
	})
	return conn, table
}

type fixture struct {
	t       testing.TB
	dsn     string
	conn    *pgx.Conn
	table   string
	brokers []string
	cfg     Config
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dsn := testenv.Postgres(t)
	conn, table := testTable(t, dsn)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "events", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	f := &fixture{t: t, dsn: dsn, conn: conn, table: table, brokers: c.ListenAddrs()}
	f.cfg = Config{
		DSN: dsn, Table: table, Brokers: f.brokers,
		EventsTopic: "events", DLQTopic: "dlq", StateTopic: "outbox-state", TransactionalID: "outbox-" + table,
		Batch: 100, Poll: 20 * time.Millisecond, StandbyPoll: 50 * time.Millisecond,
	}
	return f
}

// run starts a relay with cfg until the test ends or stop is called.
func (f *fixture) run(cfg Config) (stop func()) {
	f.t.Helper()
	r, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("relay: %v", err)
		}
	})
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) insert(ctx context.Context, tx pgx.Tx, id, key string, n int) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+f.table+" (id, type, endpoint_id, ordering_key, payload) VALUES ($1, 'test.event', 'ep', $2, $3)",
		id, key, fmt.Sprintf(`{"key":%q, "n":%d}`, key, n))
	return err
}

// read reads topic with read_committed until want records came or within
// passed.
func (f *fixture) read(topic string, want int, within time.Duration) []*kgo.Record {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

func (f *fixture) left() int {
	f.t.Helper()
	var n int
	if err := f.conn.QueryRow(f.t.Context(), "SELECT count(*) FROM "+f.table).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// checkOnceInOrder checks that recs hold each of want's ids once and, per
// ordering key, in increasing n.
func checkOnceInOrder(t *testing.T, recs []*kgo.Record, want int) {
	t.Helper()
	seen := make(map[string]int)
	lastN := make(map[string]int)
	for _, r := range recs {
		ev, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatalf("record is not an envelope: %v", err)
		}
		seen[ev.ID]++
		var p struct {
			Key string `json:"key"`
			N   int    `json:"n"`
		}
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != p.Key {
			t.Errorf("%s: record key %q, want the ordering key %q", ev.ID, r.Key, p.Key)
		}
		if last, ok := lastN[p.Key]; ok && p.N <= last {
			t.Errorf("key %s: n %d after %d", p.Key, p.N, last)
		}
		lastN[p.Key] = p.N
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if len(seen) != want || dups != 0 {
		t.Errorf("%d distinct events with %d repeats in the events topic, want %d once each", len(seen), dups, want)
	}
}

// Rows of transactions that commit out of seq order are all relayed, once,
// in order per key, and deleted; a row whose transaction is still open
// waits for its commit.
func TestRelayPublishesRowsCommittedOutOfOrderOnceInOrder(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// A long transaction takes its seq first and commits last.
	late, err := f.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.insert(ctx, late, "late", "late-key", 0); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close(context.Background()) }()
	const keys, perKey = 10, 50
	for n := range perKey {
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys {
			if err := f.insert(ctx, tx, fmt.Sprintf("k%d-%d", k, n), fmt.Sprintf("k%d", k), n); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	cfg := f.cfg
	cfg.Registerer = reg
	f.run(cfg)
	recs := f.read("events", keys*perKey, 20*time.Second)
	if len(recs) != keys*perKey {
		t.Fatalf("%d records before the late commit, want %d", len(recs), keys*perKey)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	recs = f.read("events", keys*perKey+1, 20*time.Second)
	checkOnceInOrder(t, recs, keys*perKey+1)
	waitFor(t, 10*time.Second, "the relayed rows deleted", func() bool { return f.left() == 0 })
	if got := metric(t, reg, "hookline_outbox_rows_relayed_total"); got != keys*perKey+1 {
		t.Errorf("hookline_outbox_rows_relayed_total = %v, want %d", got, keys*perKey+1)
	}
}

// A relay that dies between its Kafka commit and the delete of the rows
// leaves them in the table; the next session deletes them without
// publishing them again.
func TestRelayCrashBetweenCommitAndDeleteRepeatsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tx, err := f.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	for i := range n {
		if err := f.insert(ctx, tx, fmt.Sprintf("e-%d", i), fmt.Sprintf("k%d", i%5), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var crashes atomic.Int32
	cfg := f.cfg
	cfg.afterCommit = func() error {
		if crashes.Add(1) <= 2 {
			return errors.New("crash after commit")
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	f.run(cfg)
	waitFor(t, 30*time.Second, "every row relayed and deleted", func() bool { return f.left() == 0 })
	checkOnceInOrder(t, f.read("events", n+1, 3*time.Second), n)
	if crashes.Load() < 3 {
		t.Fatalf("%d commits, want the two crashes and more", crashes.Load())
	}
	if got := metric(t, reg, "hookline_outbox_errors_total"); got < 2 {
		t.Errorf("hookline_outbox_errors_total = %v, want at least the 2 crashes", got)
	}
}

// Rows that are not valid events go to the DLQ with the reason, their id
// and seq; the rows around them are relayed.
func TestRelayDeadLettersBadRowsAndGoesOn(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	stmts := []string{
		"INSERT INTO " + f.table + " (id, type, endpoint_id, payload) VALUES ('good-1', 'a.b', 'ep', '{}')",
		"INSERT INTO " + f.table + " (id, type, endpoint_id, payload) VALUES ('blank-type', '  ', 'ep', '{}')",
		"INSERT INTO " + f.table + " (id, type, payload) VALUES ('no-address', 'a.b', '[1]')",
		"INSERT INTO " + f.table + " (id, type, endpoint_id, tenant, payload) VALUES ('both', 'a.b', 'ep', 'acme', '1')",
		"INSERT INTO " + f.table + " (id, type, tenant, payload) VALUES ('good-2', 'a.b', 'acme', '\"x\"')",
	}
	for _, s := range stmts {
		if _, err := f.conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// PostgreSQL itself refuses a payload that is not JSON, in the
	// producer's transaction.
	if _, err := f.conn.Exec(ctx, "INSERT INTO "+f.table+" (id, type, endpoint_id, payload) VALUES ('not-json', 'a.b', 'ep', '{nope')"); err == nil {
		t.Error("a payload that is not JSON was inserted")
	}
	reg := prometheus.NewRegistry()
	cfg := f.cfg
	cfg.Registerer = reg
	f.run(cfg)
	dlq := f.read("dlq", 3, 20*time.Second)
	events := f.read("events", 2, 20*time.Second)
	if len(events) != 2 || len(dlq) != 3 {
		t.Fatalf("%d events and %d DLQ records, want 2 and 3", len(events), len(dlq))
	}
	for _, r := range dlq {
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastClass != processors.ClassMalformed || !strings.Contains(st.DLQReason, "seq ") || !strings.Contains(st.DLQReason, "outbox row") {
			t.Errorf("DLQ record %s: class %q reason %q, want malformed_record naming the row", r.Value, st.LastClass, st.DLQReason)
		}
		t.Logf("DLQ reason: %s", st.DLQReason)
	}
	waitFor(t, 10*time.Second, "every row deleted", func() bool { return f.left() == 0 })
	if got := metric(t, reg, "hookline_outbox_rows_dead_lettered_total"); got != 3 {
		t.Errorf("hookline_outbox_rows_dead_lettered_total = %v, want 3", got)
	}
}

// Of two relays on one table one is active; when it stops, the other takes
// over, and nothing is lost or repeated.
func TestOneRelayIsActiveAndAStandbyTakesOver(t *testing.T) {
	f := newFixture(t)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, b := f.cfg, f.cfg
	a.Registerer, b.Registerer = regA, regB
	stopA := f.run(a)
	waitFor(t, 10*time.Second, "relay a active", func() bool { return metric(t, regA, "hookline_outbox_active") == 1 })
	f.run(b)
	ctx := t.Context()
	const n = 400
	for i := range n {
		tx, err := f.conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.insert(ctx, tx, fmt.Sprintf("e-%d", i), fmt.Sprintf("k%d", i%7), i); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			if got := metric(t, regB, "hookline_outbox_active"); got != 0 {
				t.Fatalf("relay b active %v while a is", got)
			}
			stopA()
		}
	}
	waitFor(t, 20*time.Second, "relay b takes over and relays the rest", func() bool { return f.left() == 0 })
	if got := metric(t, regB, "hookline_outbox_active"); got != 1 {
		t.Errorf("relay b active %v after a stopped, want 1", got)
	}
	checkOnceInOrder(t, f.read("events", n+1, 3*time.Second), n)
}

func TestNewNamesTheBadSetting(t *testing.T) {
	ok := Config{DSN: "postgres://u@127.0.0.1:1/db", Brokers: []string{"x:1"}, EventsTopic: "e", DLQTopic: "d", StateTopic: "s", TransactionalID: "t"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no dsn", func(c *Config) { c.DSN = "" }, "outbox_postgres"},
		{"bad dsn", func(c *Config) { c.DSN = "postgres://u:secret@[::1" }, "outbox_postgres"},
		{"bad table", func(c *Config) { c.Table = "x; DROP TABLE y" }, "outbox_table"},
		{"batch too big", func(c *Config) { c.Batch = MaxBatch + 1 }, "outbox_batch"},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "brokers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
}

// metric is the value of the counter or gauge name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
