package ingest

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
)

// benchKeys is the number of keys the index benchmarks fill:
// HOOKLINE_INDEX_KEYS, or 1M. docs/design/idempotency.md has the figures
// at 10M.
func benchKeys(b *testing.B) int {
	if v := os.Getenv("HOOKLINE_INDEX_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HOOKLINE_INDEX_KEYS=%q: want a positive number", v)
		}
		return n
	}
	return 1_000_000
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIndexMemory fills the index with benchKeys Idempotency-Keys
// spread over the window, each of its own event id, generated (as for an
// event posted without an id) or chosen by the client, and reports the heap
// bytes per key once collected.
func BenchmarkIndexMemory(b *testing.B) {
	for _, tc := range []struct {
		name string
		id   func(i int, at time.Time) string
	}{
		{"generated-id", func(_ int, at time.Time) string { return envelope.NewID(at) }},
		{"client-id", func(i int, _ time.Time) string { return "order-" + strconv.Itoa(i) }},
	} {
		b.Run(tc.name, func(b *testing.B) { benchIndexMemory(b, tc.id) })
	}
}

func benchIndexMemory(b *testing.B, newID func(i int, at time.Time) string) {
	n := benchKeys(b)
	now := time.Now()
	window := DefaultIdempotencyWindow
	for b.Loop() {
		before := heapInUse()
		d := newDedupe(window, func() time.Time { return now })
		step := window / time.Duration(n)
		for i := range n {
			at := now.Add(-window + step*time.Duration(i+1))
			d.load(hashKey(idempotencyDedupeKey("tenant-"+strconv.Itoa(i%100), "key-"+strconv.Itoa(i))), newID(i, at), at)
		}
		after := heapInUse()
		if d.size() != n {
			b.Fatalf("index holds %d keys, want %d", d.size(), n)
		}
		b.ReportMetric(float64(after-before)/float64(n), "bytes/key")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB")
		runtime.KeepAlive(d)
	}
}

// BenchmarkLoadIdempotency measures a start with benchKeys keys in the
// window (one event each, with a generated id) on an in-process kfake
// broker: from the topic alone, and from a snapshot that covers them all.
func BenchmarkLoadIdempotency(b *testing.B) {
	n := benchKeys(b)
	e := newEnv(b)
	ctx := context.Background()
	const batch = 10_000
	recs := make([]*kgo.Record, 0, batch)
	for i := range n {
		r, err := envelope.Record(eventsTopic, envelope.Event{ID: envelope.NewID(time.Now()), Type: "t", EndpointID: "ep_1", Payload: []byte("1")})
		if err != nil {
			b.Fatal(err)
		}
		// Stamped with its (empty) tenant, as the API writes it.
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderTenant})
		recs = append(recs, r)
		if len(recs) == batch || i == n-1 {
			if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	path := filepath.Join(b.TempDir(), "events.snapshot")
	load := func(b *testing.B, snapshot string) *Server {
		s := e.server(b, func(c *Config) { c.SnapshotPath = snapshot })
		if err := s.LoadIdempotency(ctx, e.producer); err != nil {
			b.Fatal(err)
		}
		s.follow.consumer.Close()
		if s.dedupe.size() != n {
			b.Fatalf("index holds %d keys, want %d", s.dedupe.size(), n)
		}
		return s
	}
	b.Run("topic", func(b *testing.B) {
		var s *Server
		for b.Loop() {
			s = load(b, "")
		}
		began := time.Now()
		if _, err := writeSnapshot(path, eventsTopic, s.cfg.IdempotencyWindow, time.Now(), s.follow.positions(), s.dedupe); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(began).Milliseconds()), "snapshot-write-ms")
	})
	b.Run("snapshot", func(b *testing.B) {
		if _, err := os.Stat(path); err != nil {
			b.Skip("no snapshot: run the topic sub-benchmark first")
		}
		for b.Loop() {
			load(b, path)
		}
		if fi, err := os.Stat(path); err == nil {
			b.ReportMetric(float64(fi.Size())/float64(n), "file-bytes/key")
		}
	})
}

// BenchmarkPostEventWithKey posts single events, each with a new
// Idempotency-Key, from concurrent clients on an in-process kfake broker:
// with the index private to the server (no follower), and following the
// events topic, where every such request waits for the follower to reach
// the topic's end offsets. The difference is what sharing the index costs.
func BenchmarkPostEventWithKey(b *testing.B) {
	for _, followed := range []bool{false, true} {
		name := "private"
		if followed {
			name = "followed"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			s := e.server(b, nil)
			if followed {
				ctx, cancel := context.WithCancel(context.Background())
				if err := s.LoadIdempotency(ctx, e.producer); err != nil {
					b.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- s.FollowIdempotency(ctx) }()
				b.Cleanup(func() {
					cancel()
					if err := <-done; err != nil {
						b.Errorf("FollowIdempotency: %v", err)
					}
				})
			}
			h := s.Handler()
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := "key-" + strconv.FormatInt(next.Add(1), 10)
					req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(`{"type":"t","endpoint_id":"ep_1","payload":1}`))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 202 {
						b.Errorf("post: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}
