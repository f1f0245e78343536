package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// An endpoint with rate_limit 20 never gets more than 20 + burst requests in
// any one-second window, measured at the receiver, and every event reaches
// it on its first attempt: waiting for the limit is not an attempt. An
// unlimited endpoint on the same partition, fed the same keys in the same
// run, is not held back: it has all its events before the limited one has
// half of its own.
func TestRateLimitedEndpointIsPacedAndHoldsNoOtherEndpoint(t *testing.T) {
	const n, limit = 400, 20
	cfg := testConfig(t)
	cfg.Partitions = 1 // both endpoints share the partition, and its scheduler
	h := start(t, cfg)
	limited := newReceiver(t, nil)
	free := newReceiver(t, nil)
	ctx := context.Background()
	if err := h.env.Registry.Put(ctx, endpoints.Endpoint{ID: "limited", URL: limited.url, Secrets: []string{limited.secret}, Enabled: true, RateLimit: limit}); err != nil {
		t.Fatal(err)
	}
	h.addEndpoint("free", free, 5*time.Second)

	var rs []*kgo.Record
	for i := range n {
		key := fmt.Sprint("key-", i%8)
		rs = append(rs, eventRecord(t, h, fmt.Sprintf("lim-%d", i), "limited", key, i))
		rs = append(rs, eventRecord(t, h, fmt.Sprintf("free-%d", i), "free", key, i))
	}
	if err := h.env.Client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	limitedWhenFreeDone := -1
	waitFor(t, 120*time.Second, "every event delivered to both endpoints", func() bool {
		_, fc, _ := free.snapshot()
		_, lc, _ := limited.snapshot()
		if limitedWhenFreeDone < 0 && len(fc) == n {
			limitedWhenFreeDone = len(lc)
		}
		return len(fc) == n && len(lc) == n
	})

	if limitedWhenFreeDone >= n/2 {
		t.Errorf("the unlimited endpoint finished when the limited one had %d of %d events: it was held back", limitedWhenFreeDone, n)
	}
	hits, _, bad := limited.snapshot()
	if bad > 0 {
		t.Fatalf("%d requests failed verification", bad)
	}
	times := make([]time.Time, len(hits))
	for i, hit := range hits {
		times[i] = hit.at
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most, burst := 0, endpoints.RateBurst(limit)
	for i := range times {
		j := i
		for j < len(times) && times[j].Before(times[i].Add(time.Second)) {
			j++
		}
		most = max(most, j-i)
	}
	if most > limit+burst {
		t.Errorf("%d requests in one second at the receiver, want at most %d + %d", most, limit, burst)
	}
	if most < limit/2 {
		t.Errorf("at most %d requests in any second: the limit of %d was not approached, so the test proves nothing", most, limit)
	}
	for _, a := range h.attempts(2*n, 60*time.Second) {
		if a.Attempt != 1 || a.Outcome != processors.OutcomeDelivered {
			t.Errorf("event %s to %s: attempt %d, outcome %s; waiting for the limit must use no attempt", a.EventID, a.EndpointID, a.Attempt, a.Outcome)
		}
	}
	t.Logf("busiest second: %d requests, %d requests from %v to %v; the limited endpoint had %d of %d when the free one finished",
		most, len(times), times[0].Format("15:04:05.000"), times[len(times)-1].Format("15:04:05.000"), limitedWhenFreeDone, n)
}

// Custom headers set through the API arrive with every delivery; the
// headers hookline sets itself are refused with a 400 that names them, on
// create and on update, and the endpoint is left as it was.
func TestCustomHeadersArriveAndReservedOnesAreRefused(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil)
	post := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, h.api+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := post("POST", "/v1/endpoints", map[string]any{
		"id": "hdr", "url": rc.url, "secret": rc.secret,
		"headers": map[string]string{"X-Tenant-Token": "t0k3n", "Authorization": "Bearer abc"},
	})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	for _, name := range []string{"Webhook-Signature", "webhook-id", "Content-Type", "content-length", "Host"} {
		for _, tc := range []struct{ method, path string }{{"POST", "/v1/endpoints"}, {"PATCH", "/v1/endpoints/hdr"}} {
			body := map[string]any{"headers": map[string]string{name: "x"}}
			if tc.method == "POST" {
				body["url"], body["secret"] = rc.url, rc.secret
			}
			status, out := post(tc.method, tc.path, body)
			msg, _ := out["error"].(string)
			field, _ := out["field"].(string)
			if status != http.StatusBadRequest || !strings.Contains(msg, name) || field != "headers["+name+"]" {
				t.Errorf("%s %s with header %s: %d %v; want 400 naming the header", tc.method, tc.path, name, status, out)
			}
		}
	}
	h.send("evt-h", "hdr", "k", map[string]int{"n": 1})
	waitFor(t, 30*time.Second, "the delivery", func() bool { hits, _, _ := rc.snapshot(); return len(hits) > 0 })
	hits, _, bad := rc.snapshot()
	if bad > 0 {
		t.Fatalf("%d requests failed verification", bad)
	}
	got := hits[0].header
	if got.Get("X-Tenant-Token") != "t0k3n" || got.Get("Authorization") != "Bearer abc" {
		t.Errorf("custom headers did not arrive: X-Tenant-Token=%q Authorization=%q", got.Get("X-Tenant-Token"), got.Get("Authorization"))
	}
	if got.Get("Content-Type") != "application/json" || got.Get("webhook-id") != "evt-h" {
		t.Errorf("hookline's own headers changed: Content-Type=%q webhook-id=%q", got.Get("Content-Type"), got.Get("webhook-id"))
	}
}

// An endpoint with max_in_flight 2 never has more than 2 requests open at
// once, although its events have many keys that could go in parallel, and
// every event arrives on its first attempt.
func TestMaxInFlightCapsConcurrentRequests(t *testing.T) {
	const n, limit = 60, 2
	cfg := testConfig(t)
	cfg.Partitions = 2
	h := start(t, cfg)
	var mu sync.Mutex
	open, most := 0, 0
	rc := newReceiver(t, func(string, int) int {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // keep the request open so overlap can show
		mu.Lock()
		open--
		mu.Unlock()
		return http.StatusOK
	})
	if err := h.env.Registry.Put(context.Background(), endpoints.Endpoint{ID: "capped", URL: rc.url, Secrets: []string{rc.secret}, Enabled: true, MaxInFlight: limit}); err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, eventRecord(t, h, fmt.Sprintf("cap-%d", i), "capped", fmt.Sprint("key-", i), i))
	}
	if err := h.env.Client.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every event answered 2xx", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.ok) == n
	})
	mu.Lock()
	peak := most
	mu.Unlock()
	if peak > limit {
		t.Errorf("%d requests open at once, want at most %d", peak, limit)
	}
	if peak < limit {
		t.Errorf("at most %d request open at once: the cap of %d was never reached, so the test proves nothing", peak, limit)
	}
	for _, a := range h.attempts(n, 30*time.Second) {
		if a.Attempt != 1 || a.Outcome != processors.OutcomeDelivered {
			t.Errorf("event %s: attempt %d, outcome %s (%s %s); waiting for the cap must use no attempt", a.EventID, a.Attempt, a.Outcome, a.ErrorClass, a.Error)
		}
	}
}
