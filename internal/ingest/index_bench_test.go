package ingest

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

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
