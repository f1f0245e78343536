package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testreport"
)

// hostile is a receiver that misbehaves as its handler says and counts the
// requests it got and the 2xx it answered in time.
type hostile struct {
	url string

	mu   sync.Mutex
	reqs int
	ok   map[string]int
}

func newHostile(t *testing.T, h func(hs *hostile, w http.ResponseWriter, r *http.Request)) *hostile {
	t.Helper()
	hs := &hostile{ok: make(map[string]int)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		hs.reqs++
		hs.mu.Unlock()
		h(hs, w, r)
	})}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed once the test closes it
	t.Cleanup(func() { _ = srv.Close() })
	hs.url = "http://" + ln.Addr().String() + "/hook"
	return hs
}

func (hs *hostile) delivered(id string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.ok[id]
}

// Endpoints that hang, reset the connection, answer 200 only after the
// timeout, or stream a huge body do not slow or block a healthy endpoint on
// the same partitions; each of their events ends delivered or in the DLQ.
func TestHostileReceiversStayLocal(t *testing.T) {
	cfg := testConfig(t)
	h := start(t, cfg)
	const timeout = 300 * time.Millisecond
	healthy := newReceiver(t, nil)
	hostiles := map[string]*hostile{
		"hang": newHostile(t, func(_ *hostile, _ http.ResponseWriter, r *http.Request) {
			// Read the body first: only then does net/http watch the
			// connection and end the request's context when the client
			// gives up, or the server closes, instead of hanging for ever.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}),
		"reset": newHostile(t, func(_ *hostile, w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_ = conn.(*net.TCPConn).SetLinger(0) // close with RST
			_ = conn.Close()
		}),
		"late-200": newHostile(t, func(_ *hostile, w http.ResponseWriter, _ *http.Request) {
			time.Sleep(timeout + 200*time.Millisecond)
			w.WriteHeader(http.StatusOK)
		}),
		// A 200 followed by an endless body: the status is the answer; the
		// sender must stop reading and not hold the record for the body.
		"huge-body": newHostile(t, func(hs *hostile, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			hs.mu.Lock()
			hs.ok[r.Header.Get("webhook-id")]++
			hs.mu.Unlock()
			chunk := make([]byte, 64<<10)
			for range 16 << 10 { // up to 1 GiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}),
	}
	h.addEndpoint("healthy", healthy, 5*time.Second)
	for id, hs := range hostiles {
		secret, err := endpoints.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		h.addEndpoint(id, &receiver{url: hs.url, secret: secret}, timeout)
	}

	const perHostile, nHealthy = 40, 2000
	sent := make(map[string]string)
	var rs []*kgo.Record
	for i := range nHealthy {
		id := fmt.Sprintf("ok-%d", i)
		rs = append(rs, eventRecord(t, h, id, "healthy", fmt.Sprint("key-", i%64), i))
		sent[id] = "healthy"
		if i%(nHealthy/perHostile) == 0 {
			for ep := range hostiles {
				id := fmt.Sprintf("%s-%d", ep, i)
				// Same keys as healthy events: same partitions, and the
				// hostile record sits in front of healthy ones of its key.
				rs = append(rs, eventRecord(t, h, id, ep, fmt.Sprint("key-", i%64), i))
				sent[id] = ep
			}
		}
	}
	began := time.Now()
	if err := h.env.Client.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every healthy event", func() bool {
		_, counts, _ := healthy.snapshot()
		return len(counts) == nHealthy
	})
	healthyDone := time.Since(began)

	delivered := func(id string) int {
		ep := sent[id]
		if ep == "healthy" {
			_, counts, _ := healthy.snapshot()
			return counts[id]
		}
		return hostiles[ep].delivered(id)
	}
	f, c := settle(t, h.env.Brokers, h.env.Topics, sent, delivered, 2*time.Minute)
	t.Logf("hostile receivers: healthy endpoint got all %d events in %v beside %d hostile events", nHealthy, healthyDone.Round(10*time.Millisecond), len(sent)-nHealthy)
	testreport.Figures(t, "hostile receivers: %v", f)
	checkFigures(t, f)

	// Per endpoint: requests, outcome classes of the attempts, and latency
	// of the healthy endpoint's attempts.
	classes := make(map[string]map[processors.ErrorClass]int)
	var healthyLat []float64
	for _, a := range c.attemptRecs {
		if classes[a.EndpointID] == nil {
			classes[a.EndpointID] = make(map[processors.ErrorClass]int)
		}
		class := a.ErrorClass
		if class == "" {
			class = "ok"
		}
		classes[a.EndpointID][class]++
		if a.EndpointID == "healthy" {
			healthyLat = append(healthyLat, a.LatencyMS)
		}
	}
	for ep, hs := range hostiles {
		hs.mu.Lock()
		t.Logf("hostile receivers: %-9s %3d requests, attempts by class %v", ep, hs.reqs, classes[ep])
		hs.mu.Unlock()
	}
	sort.Float64s(healthyLat)
	if len(healthyLat) > 0 {
		t.Logf("hostile receivers: healthy attempts %d, HTTP latency p50 %.1fms p99 %.1fms, classes %v",
			len(healthyLat), healthyLat[len(healthyLat)/2], healthyLat[len(healthyLat)*99/100], classes["healthy"])
	}
	_, counts, _ := healthy.snapshot()
	for id, n := range counts {
		if n != 1 {
			t.Errorf("healthy endpoint got %s %d times, want once (nothing crashed)", id, n)
		}
	}
	for id, ep := range sent {
		if ep == "huge-body" && hostiles[ep].delivered(id) > 0 && c.dlq[id] > 0 {
			t.Errorf("%s was answered 200 by huge-body and still went to the DLQ", id)
		}
	}
}
