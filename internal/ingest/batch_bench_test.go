package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// oversizedBatch is an 8 MB batch body of 2,000,000 tiny events, far more
// than MaxBatch.
func oversizedBatch() []byte {
	const items = 2_000_000
	var b bytes.Buffer
	b.Grow(items*4 + 16)
	b.WriteString(`{"events":[`)
	for i := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{}")
	}
	b.WriteString("]}")
	return b.Bytes()
}

// peakRSS reads the process's peak resident set (VmHWM) in bytes, and
// resets it when reset is set (Linux only; 0 elsewhere).
func peakRSS(reset bool) int64 {
	if reset {
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fullBatch is a valid batch at the limits: 500 events whose payloads
// fill most of the 8 MiB body.
func fullBatch() []byte {
	payload := `"` + strings.Repeat("x", (DefaultMaxBatchBytes-64<<10)/DefaultMaxBatch) + `"`
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i := range DefaultMaxBatch {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"type":"t","endpoint_id":"ep_1","payload":` + payload + `}`)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// BenchmarkFullBatch measures what accepting a batch at the limits costs
// (500 events, an 8 MB body): allocations per request and peak RSS growth,
// which stay a small multiple of the body.
func BenchmarkFullBatch(b *testing.B) {
	body := fullBatch()
	s, err := New(Config{EventsTopic: "events", Registry: fuzzRegistry{}, Producer: producerFunc(func([]*kgo.Record) {}), MaxPayloadBytes: 64 << 10})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	runtime.GC()
	debug.FreeOSMemory()
	before := peakRSS(true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events/batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("answer %d %s, want 202", w.Code, w.Body.String())
		}
	}
	b.StopTimer()
	if before > 0 {
		b.ReportMetric(float64(peakRSS(false)-before)/(1<<20), "peak-rss-MB")
	}
	b.ReportMetric(float64(len(body))/(1<<20), "body-MB")
}

// BenchmarkOversizedBatch measures what refusing an 8 MB batch of 2M
// items costs: allocations per request (B/op) and how far the process's
// peak RSS grows above where it stood with the body already in memory
// (peak-rss-MB). Decoding must stop at MaxBatch+1 events, so both stay a
// small fraction of the body.
func BenchmarkOversizedBatch(b *testing.B) {
	body := oversizedBatch()
	s, err := New(Config{EventsTopic: "events", Registry: fuzzRegistry{}, Producer: producerFunc(func([]*kgo.Record) {})})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	runtime.GC()
	debug.FreeOSMemory()
	before := peakRSS(true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events/batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			b.Fatalf("answer %d %s, want 400", w.Code, w.Body.String())
		}
	}
	b.StopTimer()
	if before > 0 {
		b.ReportMetric(float64(peakRSS(false)-before)/(1<<20), "peak-rss-MB")
	}
	b.ReportMetric(float64(len(body))/(1<<20), "body-MB")
}
