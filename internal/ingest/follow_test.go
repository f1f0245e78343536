package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookline/hookline/envelope"
)

// Two servers on one cluster stand for two serve processes: a retry that
// reaches the other one is answered as the duplicate it is, with the
// first event's id, and nothing more is written.
func TestRetryAtAnotherProcessIsADuplicate(t *testing.T) {
	e := newEnv(t)
	a, b := e.server(t, nil), e.server(t, nil)
	follow(t, a, e.producer)
	follow(t, b, e.newClient(t))
	const body = `{"type":"t","endpoint_id":"ep_1","payload":1}`
	first := do(t, a.Handler(), "POST", "/v1/events", body, "Idempotency-Key", "pay-1")
	if first.status != 202 || first.body["duplicate"] != false {
		t.Fatalf("first post: %d %s", first.status, first.raw)
	}
	for name, s := range map[string]*Server{"other process": b, "same process": a} {
		retry := do(t, s.Handler(), "POST", "/v1/events", body, "Idempotency-Key", "pay-1")
		if retry.status != 202 || retry.body["duplicate"] != true || retry.str("id") != first.str("id") {
			t.Fatalf("retry at the %s: %d %s, want a duplicate of %s", name, retry.status, retry.raw, first.str("id"))
		}
	}
	byID := do(t, b.Handler(), "POST", "/v1/events", `{"id":"`+first.str("id")+`","type":"t","endpoint_id":"ep_1","payload":1}`)
	if byID.body["duplicate"] != true {
		t.Fatalf("the first event's id at the other process: %s, want a duplicate", byID.raw)
	}
	if n := len(e.records(t)); n != 1 {
		t.Fatalf("%d records written, want 1", n)
	}
}

// A start with a snapshot reads only what was written after it, and still
// knows every key: those in the snapshot and those written since.
func TestSnapshotThenTail(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "idx", "events.snapshot")
	first := e.server(t, func(c *Config) { c.SnapshotPath = path })
	stop := follow(t, first, e.producer)
	before := do(t, first.Handler(), "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "before")
	// The snapshot covers what the follower has read: let it read the key.
	if err := first.follow.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop() // writes the snapshot
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot after FollowIdempotency stopped: %v", err)
	}
	// Written while no server runs: only the tail after the snapshot has it.
	rec, err := envelope.Record(eventsTopic, envelope.Event{ID: "after-1", Type: "t", EndpointID: "ep_1", Payload: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.producer.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	second := e.server(t, func(c *Config) {
		c.SnapshotPath = path
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	follow(t, second, e.producer)
	if !strings.Contains(logs.String(), "from=snapshot") || !strings.Contains(logs.String(), "records=1 ") {
		t.Fatalf("load log %q, want it from the snapshot, reading the one record after it", logs.String())
	}
	h := second.Handler()
	if res := do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "before"); res.body["duplicate"] != true || res.str("id") != before.str("id") {
		t.Fatalf("key from the snapshot: %s, want a duplicate of %s", res.raw, before.str("id"))
	}
	if res := do(t, h, "POST", "/v1/events", `{"id":"after-1","type":"t","endpoint_id":"ep_1","payload":1}`); res.body["duplicate"] != true {
		t.Fatalf("id from the tail: %s, want a duplicate", res.raw)
	}
}

// A snapshot that cannot be used is said so in the log, and the window is
// read from the topic instead: no key is forgotten.
func TestUnusableSnapshotFallsBackToTheTopic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
		want  string
	}{
		{"corrupt", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-31] ^= 0x01 // the last byte of the last entry's id
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "checksum"},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 40); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"not a snapshot", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"past the topic's end", func(t *testing.T, path string) {
			d := newDedupe(DefaultIdempotencyWindow, time.Now)
			if _, err := writeSnapshot(path, eventsTopic, DefaultIdempotencyWindow, time.Now(), map[int32]int64{0: 1 << 40, 1: 0, 2: 0}, d); err != nil {
				t.Fatal(err)
			}
		}, "past its end offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			path := filepath.Join(t.TempDir(), "events.snapshot")
			first := e.server(t, func(c *Config) { c.SnapshotPath = path })
			stop := follow(t, first, e.producer)
			orig := do(t, first.Handler(), "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "k1")
			stop()
			tc.spoil(t, path)

			var logs bytes.Buffer
			second := e.server(t, func(c *Config) {
				c.SnapshotPath = path
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			follow(t, second, e.producer)
			if !strings.Contains(logs.String(), "snapshot not used") || !strings.Contains(logs.String(), tc.want) || !strings.Contains(logs.String(), "from=topic") {
				t.Fatalf("log %q, want the snapshot refused (%s) and the topic read", logs.String(), tc.want)
			}
			res := do(t, second.Handler(), "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "k1")
			if res.body["duplicate"] != true || res.str("id") != orig.str("id") {
				t.Fatalf("after the fallback: %s, want a duplicate of %s", res.raw, orig.str("id"))
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := newDedupe(time.Hour, clock)
	gen := envelope.NewID(now)
	want := map[keyHash]string{
		hashKey(idDedupeKey("", gen)):              gen,
		hashKey(idempotencyDedupeKey("acme", "k")): gen,
		hashKey(idDedupeKey("acme", "order-7")):    "order-7",
	}
	for h, id := range want {
		d.load(h, id, now.Add(-time.Minute))
	}
	d.load(hashKey("expired"), "old", now.Add(-2*time.Hour))
	path := filepath.Join(t.TempDir(), "s")
	pos := map[int32]int64{0: 5, 1: 0, 2: 9}
	if n, err := writeSnapshot(path, eventsTopic, time.Hour, now, pos, d); err != nil || n != len(want) {
		t.Fatalf("writeSnapshot: %d keys, %v; want %d keys (the expired one left out)", n, err, len(want))
	}
	got, covered, err := readSnapshot(path, eventsTopic, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	for p, off := range pos {
		if covered[p] != off {
			t.Errorf("partition %d covered up to %d, want %d", p, covered[p], off)
		}
	}
	for h, id := range want {
		if gotID, ok := got.lookup(h); !ok || gotID != id {
			t.Errorf("key %x: %q %v, want %q", h, gotID, ok, id)
		}
	}
	if got.size() != len(want) {
		t.Errorf("%d keys read back, want %d", got.size(), len(want))
	}

	for _, tc := range []struct {
		name   string
		topic  string
		window time.Duration
		now    time.Time
		want   string
	}{
		{"other topic", "other", time.Hour, now, "topic"},
		{"other window", eventsTopic, 2 * time.Hour, now, "window"},
		{"taken a window ago", eventsTopic, time.Hour, now.Add(time.Hour), "longer than the window ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readSnapshot(path, tc.topic, tc.window, func() time.Time { return tc.now })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("readSnapshot: %v, want an error about the %s", err, tc.want)
			}
		})
	}
	if _, _, err := readSnapshot(filepath.Join(t.TempDir(), "none"), eventsTopic, time.Hour, clock); err != errNoSnapshot {
		t.Fatalf("missing file: %v, want errNoSnapshot", err)
	}
}

func TestCheckRetention(t *testing.T) {
	for _, tc := range []struct {
		window    time.Duration
		retention string
		ok        bool
	}{
		{24 * time.Hour, "604800000", true},
		{24 * time.Hour, "86400000", true},
		{25 * time.Hour, "86400000", false},
		{24 * time.Hour, "-1", true},
		{time.Hour, "soon", false},
	} {
		err := CheckRetention(tc.window, "hookline.events", tc.retention)
		if (err == nil) != tc.ok {
			t.Errorf("window %v, retention.ms %s: %v, want ok %v", tc.window, tc.retention, err, tc.ok)
		}
		if err != nil && tc.retention != "soon" && (!strings.Contains(err.Error(), "idempotency_window") || !strings.Contains(err.Error(), "hookline.events") || !strings.Contains(err.Error(), tc.retention)) {
			t.Errorf("error %q does not name idempotency_window, the topic and its retention.ms", err)
		}
	}
}

func TestLoadRefusesAWindowLongerThanRetention(t *testing.T) {
	e := newEnv(t)
	if err := e.cluster.CreateTopic("short.events", 1, map[string]string{"retention.ms": "3600000"}); err != nil {
		t.Fatal(err)
	}
	s := e.server(t, func(c *Config) { c.EventsTopic = "short.events"; c.IdempotencyWindow = 2 * time.Hour })
	err := s.LoadIdempotency(context.Background(), e.producer)
	if err == nil || !strings.Contains(err.Error(), "idempotency_window 2h0m0s") || !strings.Contains(err.Error(), "retention.ms 3600000") {
		t.Fatalf("LoadIdempotency: %v, want an error naming idempotency_window and the retention", err)
	}
}

// Callers that arrive while no listing is in flight share one; a caller
// that arrives while one is in flight waits for the next, which is sent
// after it arrived, so it never gets offsets older than its call.
func TestEndsBarrierSharesListingsButNeverAnOldOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		listings := 0
		release := make(chan struct{})
		b := &endsBarrier{timeout: time.Minute, list: func(ctx context.Context) (map[int32]int64, error) {
			mu.Lock()
			listings++
			n := listings
			mu.Unlock()
			<-release
			return map[int32]int64{0: int64(n)}, nil
		}}
		got := make(chan int64, 10)
		get := func() {
			ends, err := b.get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- ends[0]
		}
		go get() // starts listing 1
		synctest.Wait()
		for range 3 { // arrive while listing 1 is in flight: all share listing 2
			go get()
		}
		synctest.Wait()
		release <- struct{}{} // listing 1 answers
		if n := <-got; n != 1 {
			t.Fatalf("first caller got listing %d, want 1", n)
		}
		synctest.Wait()
		release <- struct{}{} // listing 2 answers
		for range 3 {
			if n := <-got; n != 2 {
				t.Fatalf("a caller that arrived during listing 1 got listing %d, want 2", n)
			}
		}
		synctest.Wait()
		if listings != 2 {
			t.Fatalf("%d listings for 4 callers, want 2", listings)
		}
	})
}

// An entry lives for its window and no longer, and the earliest event of
// a key stays its original, whatever order the records are read in.
func TestIndexWindowAndEarliest(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := start
	d := newDedupe(time.Hour, func() time.Time { return now })
	h := hashKey(idempotencyDedupeKey("", "k"))
	later := envelope.NewID(start.Add(time.Minute))
	d.load(h, later, start.Add(time.Minute))
	d.load(h, "first", start)
	d.load(h, "last", start.Add(2*time.Minute))
	if id, ok := d.lookup(h); !ok || id != "first" {
		t.Fatalf("lookup: %q %v, want the earliest event, first", id, ok)
	}
	now = start.Add(time.Hour - time.Millisecond)
	if _, ok := d.lookup(h); !ok {
		t.Fatal("key forgotten before its window ended")
	}
	now = start.Add(time.Hour)
	if _, ok := d.lookup(h); ok {
		t.Fatal("key still answered at the end of its window")
	}
	d.expire(now.Add(time.Hour))
	if n := d.size(); n != 0 {
		t.Fatalf("%d keys held after their buckets expired, want 0", n)
	}
}
