package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startEmbedded(t *testing.T, listen, dir string, logger *slog.Logger) *Embedded {
	t.Helper()
	e, err := StartEmbedded(listen, dir, 3, logger)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

func embeddedClient(t *testing.T, e *Embedded, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// pollN polls until n records arrived or the deadline passes.
func pollN(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("polled %d of %d records before the deadline", len(got), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

func values(rs []*kgo.Record) map[string]bool {
	m := make(map[string]bool, len(rs))
	for _, r := range rs {
		m[string(r.Value)] = true
	}
	return m
}

// syncBuffer is a log destination shared by the test and the broker.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// What a hookline stage does (consume, produce, commit in one transaction,
// KIP-447 stable offsets) survives a broker restart: the records, the
// transactional output and the group's committed offset.
func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	const n = 20

	e := startEmbedded(t, "127.0.0.1:0", dir, nil)
	adm := kadm.NewClient(embeddedClient(t, e))
	if _, err := adm.CreateTopics(ctx, -1, -1, nil, "in", "out"); err != nil {
		t.Fatal(err)
	}
	prod := embeddedClient(t, e)
	for i := range n {
		r := &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "v%d", i)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(e.Addrs()...),
		kgo.ConsumerGroup("stage"),
		kgo.ConsumeTopics("in"),
		kgo.TransactionalID("embedded-test-1"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatal(err)
	}
	for consumed := 0; consumed < n; {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("transactional stage consumed %d of %d before the deadline", consumed, n)
		}
		rs := fs.Records()
		if len(rs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			sess.Produce(ctx, &kgo.Record{Topic: "out", Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end transaction: %v", err)
		}
		if committed {
			consumed += len(rs)
		}
	}
	sess.Close()
	e.Close()

	// A different port: the data must not depend on the address.
	e2 := startEmbedded(t, "127.0.0.1:0", dir, nil)

	in := embeddedClient(t, e2, kgo.ConsumeTopics("in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := values(pollN(ctx, t, in, n)); len(got) != n {
		t.Errorf("after restart: %d distinct records in \"in\", want %d", len(got), n)
	}
	out := embeddedClient(t, e2, kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := values(pollN(ctx, t, out, n))
	for i := range n {
		if !got[fmt.Sprintf("out-v%d", i)] {
			t.Errorf("after restart: committed transactional record out-v%d missing", i)
		}
	}

	// The group resumes after what it committed: only a new record.
	if err := embeddedClient(t, e2).ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resumed := embeddedClient(t, e2, kgo.ConsumerGroup("stage"), kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rs := pollN(ctx, t, resumed, 1)
	if len(rs) != 1 || string(rs[0].Value) != "new" {
		t.Errorf("group resumed with %d records (first %q), want only \"new\"", len(rs), rs[0].Value)
	}
}

func TestEmbeddedBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	addr := ln.Addr().String()

	e, err := StartEmbedded(addr, t.TempDir(), 1, nil)
	if err == nil {
		e.Close()
		t.Fatalf("StartEmbedded on busy %s succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
}

// A second hookline on the same address fails without touching the first.
func TestEmbeddedSecondStartOnSameAddress(t *testing.T) {
	dir := t.TempDir()
	e := startEmbedded(t, "127.0.0.1:0", dir, nil)
	addr := e.Addrs()[0]
	if e2, err := StartEmbedded(addr, t.TempDir(), 1, nil); err == nil {
		e2.Close()
		t.Fatalf("second StartEmbedded on %s succeeded", addr)
	} else if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(embeddedClient(t, e)).ListBrokers(ctx); err != nil {
		t.Errorf("first broker after a failed second start: %v", err)
	}
}

func TestEmbeddedListenAndDefaults(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	e := startEmbedded(t, "0.0.0.0:0", dir, logger)

	addr := e.Addrs()[0]
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Errorf("listening on all interfaces advertises %q, want a loopback address clients can dial", addr)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(embeddedClient(t, e))
	resp, err := adm.CreateTopic(ctx, -1, -1, nil, "defaults")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	if resp.NumPartitions != 3 || resp.ReplicationFactor != 1 {
		t.Errorf("topic created with broker defaults: %d partitions, replication %d; want 3 and 1", resp.NumPartitions, resp.ReplicationFactor)
	}

	out := logs.String()
	// Two warnings: a development broker, and one reachable beyond
	// loopback without authentication.
	if strings.Count(out, "level=WARN") != 2 || !strings.Contains(out, "embedded single-node development Kafka broker (kfake); use --brokers for production") ||
		!strings.Contains(out, "addr="+addr) || !strings.Contains(out, "data_dir="+dir) ||
		!strings.Contains(out, "INSECURE: the embedded kafka broker listens beyond loopback and has no authentication") {
		t.Errorf("want a warning naming the address and data dir, and one that the port is open, got:\n%s", out)
	}
	if strings.Contains(out, "level=INFO") || strings.Contains(out, "level=DEBUG") {
		t.Errorf("kfake's per-request logs leaked into the log:\n%s", out)
	}
}

func TestEmbeddedBadArguments(t *testing.T) {
	tests := []struct {
		name, listen, dir string
		partitions        int32
		want              string
	}{
		{"no port", "localhost", "d", 1, `listen address "localhost"`},
		{"no partitions", "127.0.0.1:0", "d", 0, "partitions must be positive"},
		{"no data dir", "127.0.0.1:0", "", 1, "data directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StartEmbedded(tt.listen, tt.dir, tt.partitions, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartEmbedded() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedCloseTwice(t *testing.T) {
	e := startEmbedded(t, "127.0.0.1:0", t.TempDir(), nil)
	e.Close()
	e.Close()
	if len(e.Addrs()) != 1 {
		t.Errorf("Addrs() after Close = %v", e.Addrs())
	}
	_, err := net.DialTimeout("tcp", e.Addrs()[0], time.Second)
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Errorf("dial after Close: %v, want connection refused", err)
	}
}
