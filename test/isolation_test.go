package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
)

func eventRecord(t testing.TB, h *harness, id, endpointID, key string, n int) *kgo.Record {
	t.Helper()
	r, err := envelope.Record(h.env.Topics.Events, envelope.Event{
		ID: id, Type: "test.event", EndpointID: endpointID, OrderingKey: key,
		Payload: []byte(fmt.Sprintf(`{"n":%d}`, n)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// slowRun delivers n events to a healthy endpoint on a one-partition
// pipeline, with slow events (to an endpoint whose requests never answer)
// interleaved on other keys when slow > 0, and returns how long the healthy
// endpoint took to receive all of its events. hang is how long a slow
// request is left open before it times out.
func slowRun(t testing.TB, n, slow int, hang time.Duration) (time.Duration, *receiver) {
	cfg := testConfig(t)
	cfg.Partitions = 1
	h := start(t, cfg)
	healthy := newReceiver(t, nil)
	hanging := newReceiver(t, func(string, int) int { return -1 })
	h.addEndpoint("healthy", healthy, 5*time.Second)
	h.addEndpoint("slow", hanging, hang)
	var rs []*kgo.Record
	every := 0
	if slow > 0 {
		every = n / slow
	}
	for i := range n {
		if every > 0 && i%every == 0 {
			rs = append(rs, eventRecord(t, h, fmt.Sprintf("slow-%d", i), "slow", fmt.Sprint("slow-key-", i%7), i))
		}
		rs = append(rs, eventRecord(t, h, fmt.Sprintf("evt-%d", i), "healthy", fmt.Sprint("key-", i%64), i))
	}
	start := time.Now()
	if err := h.env.Client.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "healthy deliveries", func() bool {
		_, counts, _ := healthy.snapshot()
		return len(counts) == n
	})
	return time.Since(start), hanging
}

// An endpoint whose requests hang does not hold a healthy endpoint on the
// same partition: every healthy event is delivered while the hanging
// endpoint's first requests are still open (they time out only after a
// minute). How much it slows the healthy one is a speed figure, measured by
// BenchmarkSlowEndpointBesideAHealthyOne.
func TestHangingEndpointDoesNotHoldAHealthyOneOnTheSamePartition(t *testing.T) {
	const n, slow, hang = 3000, 100, time.Minute
	took, hanging := slowRun(t, n, slow, hang)
	hits, counts, _ := hanging.snapshot()
	if len(hits) == 0 {
		t.Fatal("the hanging endpoint got no request: the test proves nothing")
	}
	if took >= hang {
		t.Fatalf("the healthy endpoint's %d events took %v, as long as the hanging requests stay open", n, took)
	}
	for id, c := range counts {
		if c > 1 {
			t.Errorf("hanging event %s was attempted %d times before its first attempt timed out", id, c)
		}
	}
	t.Logf("healthy endpoint got all %d events in %v while %d requests to the hanging endpoint were open", n, took.Round(time.Millisecond), len(hits))
}

// BenchmarkSlowEndpointBesideAHealthyOne reports how much an endpoint that
// always hits its 200 ms timeout, on the same partition, slows a healthy one
// (3000 events, 100 slow ones interleaved): slowdown-ratio is the healthy
// endpoint's time beside it over its time alone, in the same run.
//
//	go test -run '^$' -bench SlowEndpoint -benchtime 3x ./test/
func BenchmarkSlowEndpointBesideAHealthyOne(b *testing.B) {
	const n = 3000
	var base, withSlow time.Duration
	for b.Loop() {
		alone, _ := slowRun(b, n, 0, 200*time.Millisecond)
		beside, _ := slowRun(b, n, 100, 200*time.Millisecond)
		base += alone
		withSlow += beside
	}
	b.ReportMetric(float64(withSlow)/float64(base), "slowdown-ratio")
	b.ReportMetric(float64(n*b.N)/base.Seconds(), "healthy-alone/s")
	b.ReportMetric(float64(n*b.N)/withSlow.Seconds(), "healthy-beside-slow/s")
}

// A record that is not an envelope, written straight to the events topic,
// lands in the DLQ with the reason, and the partition keeps flowing.
func TestMalformedRecordGoesToTheDLQAndThePartitionFlows(t *testing.T) {
	cfg := testConfig(t)
	cfg.Partitions = 1
	h := start(t, cfg)
	rc := newReceiver(t, nil)
	h.addEndpoint("shop", rc, time.Second)
	rs := []*kgo.Record{
		eventRecord(t, h, "before", "shop", "k", 1),
		{Topic: h.env.Topics.Events, Key: []byte("k"), Value: []byte("this is not json")},
		{Topic: h.env.Topics.Events, Key: []byte("k"), Value: []byte(`{"v":1,"id":"no-type","endpoint_id":"shop","payload":{}}`)},
		eventRecord(t, h, "after", "shop", "k", 2),
	}
	if err := h.env.Client.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dlq := h.readTopic(h.env.Topics.DLQ, 2, 20*time.Second)
	if len(dlq) != 2 {
		t.Fatalf("%d DLQ records, want 2", len(dlq))
	}
	for _, r := range dlq {
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastClass != processors.ClassMalformed || st.DLQReason == "" {
			t.Errorf("DLQ record for %q: class %q reason %q, want malformed_record with a reason", r.Value, st.LastClass, st.DLQReason)
		}
		t.Logf("DLQ reason: %s", st.DLQReason)
	}
	waitFor(t, 20*time.Second, "the event after the malformed ones", func() bool {
		_, counts, _ := rc.snapshot()
		return counts["before"] == 1 && counts["after"] == 1
	})
}

// A 429 with Retry-After is not retried before the time the endpoint asked
// for, even when that is later than the tier's own delay.
func TestRetryAfterIsHonoured(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, func(_ string, attempt int) int {
		if attempt == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	rc.retryAfter = "2" // seconds; the first tier waits 60ms here
	h.addEndpoint("limited", rc, time.Second)
	h.send("evt-429", "limited", "k", map[string]int{"n": 1})
	waitFor(t, 20*time.Second, "delivery after 429", func() bool {
		_, counts, _ := rc.snapshot()
		return counts["evt-429"] == 2
	})
	hits, _, _ := rc.snapshot()
	if gap := hits[1].at.Sub(hits[0].at); gap < 2*time.Second-10*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 2", gap)
	}
}
