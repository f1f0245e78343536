package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// tenantHarness runs a pipeline whose API has one token per tenant, acme
// and globex, each allowed to send and manage its own tenant only.
func tenantHarness(t *testing.T, partitions int) *harness {
	t.Helper()
	cfg := testConfig(t)
	cfg.Partitions = partitions
	cfg.Tokens = []config.Token{
		{Name: "producer-acme", Hash: config.HashToken("tok-acme"), Scopes: []string{config.ScopeIngest}, Tenants: []string{"acme"}},
		{Name: "producer-globex", Hash: config.HashToken("tok-globex"), Scopes: []string{config.ScopeIngest}, Tenants: []string{"globex"}},
	}
	return start(t, cfg)
}

// addTenantEndpoint registers rc as endpoint id of tenant.
func (h *harness) addTenantEndpoint(id, tenant string, rc *receiver, timeout time.Duration) {
	h.t.Helper()
	e := endpoints.Endpoint{ID: id, URL: rc.url, Secrets: []string{rc.secret}, Tenant: tenant, Enabled: true, TimeoutMS: int(timeout / time.Millisecond)}
	if err := h.env.Registry.Put(context.Background(), e); err != nil {
		h.t.Fatal(err)
	}
}

// sendAs posts an event with a tenant's token and returns the answer.
func (h *harness) sendAs(token string, event map[string]any, header ...string) map[string]any {
	h.t.Helper()
	body, _ := json.Marshal(event)
	req, err := http.NewRequest(http.MethodPost, h.api+"/v1/events", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("POST /v1/events as %s: %s: %s", token, resp.Status, data)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// Two tenants that use the same event id, and the same Idempotency-Key,
// each get their own event delivered: neither can claim the other's first.
func TestTenantsSharingIDsAndKeysBothDeliver(t *testing.T) {
	h := tenantHarness(t, 2)
	acme, globex := newReceiver(t, nil), newReceiver(t, nil)
	h.addTenantEndpoint("acme-ep", "acme", acme, 5*time.Second)
	h.addTenantEndpoint("globex-ep", "globex", globex, 5*time.Second)

	for _, tt := range []struct {
		token, endpoint string
	}{{"tok-acme", "acme-ep"}, {"tok-globex", "globex-ep"}} {
		if got := h.sendAs(tt.token, map[string]any{"id": "shared-id-1", "type": "t", "endpoint_id": tt.endpoint, "payload": 1}); got["duplicate"] != false {
			t.Fatalf("%s, id shared-id-1: %v, want a new event", tt.token, got)
		}
		if got := h.sendAs(tt.token, map[string]any{"type": "t", "endpoint_id": tt.endpoint, "payload": 2}, "Idempotency-Key", "order-42"); got["duplicate"] != false {
			t.Fatalf("%s, Idempotency-Key order-42: %v, want a new event", tt.token, got)
		}
	}
	for name, rc := range map[string]*receiver{"acme": acme, "globex": globex} {
		waitFor(t, 30*time.Second, name+"'s two events", func() bool {
			_, counts, _ := rc.snapshot()
			return len(counts) == 2 && counts["shared-id-1"] >= 1
		})
	}
}

// One tenant's hanging endpoint, sent events under another tenant's
// ordering key, does not delay that other tenant's event: order is per
// (endpoint, ordering key), so the keys never meet.
func TestHangingEndpointUnderAnotherTenantsKeyDoesNotDelayIt(t *testing.T) {
	h := tenantHarness(t, 1)
	hanging := newReceiver(t, func(string, int) int { return -1 })
	healthy := newReceiver(t, nil)
	// The hanging endpoint holds each attempt for a minute: were globex's
	// event queued behind acme's, it would wait at least that long.
	h.addTenantEndpoint("acme-ep", "acme", hanging, time.Minute)
	h.addTenantEndpoint("globex-ep", "globex", healthy, 5*time.Second)

	for _, id := range []string{"acme-1", "acme-2"} {
		h.sendAs("tok-acme", map[string]any{"id": id, "type": "t", "endpoint_id": "acme-ep", "ordering_key": "globex", "payload": 1})
	}
	waitFor(t, 30*time.Second, "acme's first event to hang at its endpoint", func() bool {
		_, counts, _ := hanging.snapshot()
		return counts["acme-1"] == 1
	})
	// globex's default ordering key is its tenant: "globex".
	h.sendAs("tok-globex", map[string]any{"id": "globex-1", "type": "t", "tenant": "globex", "payload": 1})
	waitFor(t, 30*time.Second, "globex's event, while acme's still hangs under the same ordering key", func() bool {
		_, counts, _ := healthy.snapshot()
		return counts["globex-1"] == 1
	})
	if _, counts, _ := hanging.snapshot(); counts["acme-1"] != 1 {
		t.Fatalf("acme's endpoint saw %v; its first attempt should still hang", counts)
	}
}
