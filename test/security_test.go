package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// With the default configuration the SSRF guard refuses a receiver on
// 127.0.0.1, whether the endpoint names the address or "localhost": nothing
// reaches it, and each event is dead-lettered at once with the
// destination_refused class. Listing the address in allow_destinations lets
// deliveries through.
func TestSSRFGuardEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.AllowPrivateDestinations = false
	h := start(t, cfg)
	rc := newReceiver(t, nil)
	h.addEndpoint("loopback", rc, time.Second)
	local := &receiver{url: "http://localhost" + rc.url[len("http://127.0.0.1"):], secret: rc.secret}
	h.addEndpoint("localhost", local, time.Second)
	h.send("evt-ip", "loopback", "k", map[string]int{"n": 1})
	h.send("evt-name", "localhost", "k", map[string]int{"n": 2})

	as := h.attempts(2, 30*time.Second)
	if len(as) != 2 {
		t.Fatalf("%d attempt records, want 2", len(as))
	}
	for _, a := range as {
		if a.ErrorClass != processors.ClassDestinationRefused || a.Outcome != processors.OutcomeDeadLettered || a.Attempt != 1 {
			t.Errorf("attempt for %s: class %q outcome %q attempt %d; want %s, dead-lettered on the first attempt", a.EndpointID, a.ErrorClass, a.Outcome, a.Attempt, processors.ClassDestinationRefused)
		}
	}
	if dlq := h.readTopic(h.env.Topics.DLQ, 2, 10*time.Second); len(dlq) != 2 {
		t.Errorf("%d DLQ records, want 2", len(dlq))
	}
	if hits, _, _ := rc.snapshot(); len(hits) != 0 {
		t.Fatalf("the refused receiver got %d requests", len(hits))
	}

	cfg = testConfig(t)
	cfg.AllowPrivateDestinations = false
	cfg.AllowDestinations = []string{"127.0.0.1/32"}
	h = start(t, cfg)
	rc = newReceiver(t, nil)
	h.addEndpoint("allowed", rc, time.Second)
	for i := range 5 {
		h.send(fmt.Sprint("evt-", i), "allowed", "k", map[string]int{"n": i})
	}
	waitFor(t, 30*time.Second, "deliveries to an allowlisted address", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == 5
	})
}

// A rotated endpoint keeps receiving verifiable deliveries: a receiver that
// still holds the old secret verifies (with the reference library) during
// the overlap.
func TestRotationEndToEnd(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil) // verifies with its own (the old) secret
	h.addEndpoint("rot", rc, time.Second)
	err := h.env.Registry.Update(context.Background(), "rot", func(e *endpoints.Endpoint) error {
		fresh, err := endpoints.GenerateSecret()
		if err != nil {
			return err
		}
		e.Rotate(fresh, time.Hour, time.Now())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		h.send(fmt.Sprint("evt-", i), "rot", "k", map[string]int{"n": i})
	}
	waitFor(t, 30*time.Second, "deliveries verified with the old secret", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == 10
	})
	if _, _, bad := rc.snapshot(); bad != 0 {
		t.Fatalf("%d requests failed verification", bad)
	}
}
