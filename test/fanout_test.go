package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// sendToTenant posts an event to every subscriber of tenant, ordered by the
// default ordering key (the tenant).
func (h *harness) sendToTenant(id, tenant string) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"id": id, "type": "test.event", "tenant": tenant, "payload": map[string]string{"id": id}})
	resp, err := http.Post(h.api+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("POST /v1/events: %s: %s", resp.Status, data)
	}
}

// A tenant's fan-out to 5 endpoints, one of which hangs on event 1: the 4
// healthy ones receive event 2 while the hanging request for event 1 is
// still open, and the hanging one gets event 2 only after event 1.
func TestTenantFanOutHangingEndpointHoldsOnlyItself(t *testing.T) {
	h := start(t, testConfig(t))
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	var hangingMu sync.Mutex
	open := false
	hanging := newReceiver(t, func(id string, _ int) int {
		if id == "evt-1" {
			hangingMu.Lock()
			open = true
			hangingMu.Unlock()
			<-release
			hangingMu.Lock()
			open = false
			hangingMu.Unlock()
		}
		return http.StatusOK
	})
	put := func(id string, rc *receiver) {
		e := endpoints.Endpoint{ID: id, URL: rc.url, Secrets: []string{rc.secret}, Enabled: true, Tenant: "acme", TimeoutMS: 60_000}
		if err := h.env.Registry.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	put("hanging", hanging)
	var healthy []*receiver
	for i := range 4 {
		rc := newReceiver(t, nil)
		healthy = append(healthy, rc)
		put(fmt.Sprintf("healthy-%d", i), rc)
	}
	waitFor(t, 10*time.Second, "the tenant's 5 endpoints in the registry", func() bool {
		return len(h.env.Registry.ByTenant("acme", "test.event")) == 5
	})

	// Event 2 is sent once the hanging request for event 1 is open: the
	// lanes are independent, so had both been sent at once, the healthy
	// endpoints could have had event 2 before the hanging one was even
	// asked for event 1 (CI saw that on Apache Kafka), which proves nothing.
	h.sendToTenant("evt-1", "acme")
	waitFor(t, 20*time.Second, "the hanging request for event 1 to be open", func() bool {
		hangingMu.Lock()
		defer hangingMu.Unlock()
		return open
	})
	h.sendToTenant("evt-2", "acme")
	waitFor(t, 20*time.Second, "event 2 at the 4 healthy endpoints", func() bool {
		for _, rc := range healthy {
			if _, counts, _ := rc.snapshot(); counts["evt-2"] == 0 {
				return false
			}
		}
		return true
	})
	hangingMu.Lock()
	stillOpen := open
	hangingMu.Unlock()
	if _, counts, _ := hanging.snapshot(); !stillOpen || counts["evt-2"] != 0 {
		t.Fatalf("when the healthy endpoints had event 2, the hanging request for event 1 was open: %v; the hanging endpoint had event 2 %d times",
			stillOpen, counts["evt-2"])
	}

	once.Do(func() { close(release) })
	waitFor(t, 20*time.Second, "both events at the hanging endpoint", func() bool {
		_, counts, _ := hanging.snapshot()
		return counts["evt-1"] == 1 && counts["evt-2"] == 1
	})
	hits, _, _ := hanging.snapshot()
	if hits[0].id != "evt-1" || hits[1].id != "evt-2" {
		t.Fatalf("the hanging endpoint got %s then %s, want evt-1 then evt-2", hits[0].id, hits[1].id)
	}
	for i, rc := range healthy {
		hits, _, _ := rc.snapshot()
		if len(hits) != 2 || hits[0].id != "evt-1" || hits[1].id != "evt-2" {
			t.Errorf("healthy endpoint %d got %v, want evt-1 then evt-2", i, hits)
		}
	}
}
