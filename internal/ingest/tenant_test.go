package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
)

// twoTenants adds an endpoint of acme and one of globex to e and returns a
// server whose tokens are each scoped to one tenant.
func twoTenants(t *testing.T, e *env) *Server {
	t.Helper()
	for _, ep := range []endpoints.Endpoint{
		{ID: "acme-ep", URL: "https://acme.example/hooks", Tenant: "acme", Enabled: true},
		{ID: "globex-ep", URL: "https://globex.example/hooks", Tenant: "globex", Enabled: true},
	} {
		secret, err := endpoints.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		ep.Secrets = []string{secret}
		if err := e.registry.Put(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
	}
	return e.server(t, func(c *Config) {
		c.Tokens = []Token{
			token("producer-acme", "tok-acme", []string{"acme"}, ScopeIngest, ScopeAdmin),
			token("producer-globex", "tok-globex", []string{"globex"}, ScopeIngest, ScopeAdmin),
		}
	})
}

func as(tok string, header ...string) []string {
	return append([]string{"Authorization", "Bearer " + tok}, header...)
}

// The same client-chosen id, and the same Idempotency-Key, used by two
// tenants are two events: neither tenant can claim or probe the other's.
func TestDedupeIsPerTenant(t *testing.T) {
	e := newEnv(t)
	s := twoTenants(t, e)
	h := s.Handler()

	tests := []struct {
		name        string
		acme, other string // bodies
		header      []string
	}{
		{"same id",
			`{"id":"shared-id-1","type":"t","endpoint_id":"acme-ep","payload":1}`,
			`{"id":"shared-id-1","type":"t","endpoint_id":"globex-ep","payload":2}`, nil},
		{"same idempotency key",
			`{"type":"t","endpoint_id":"acme-ep","payload":1}`,
			`{"type":"t","endpoint_id":"globex-ep","payload":2}`, []string{"Idempotency-Key", "order-42"}},
		{"same id, fan-out",
			`{"id":"shared-id-2","type":"t","tenant":"acme","payload":1}`,
			`{"id":"shared-id-2","type":"t","tenant":"globex","payload":2}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, h, "POST", "/v1/events", tt.acme, as("tok-acme", tt.header...)...)
			g := do(t, h, "POST", "/v1/events", tt.other, as("tok-globex", tt.header...)...)
			if a.status != http.StatusAccepted || a.body["duplicate"] != false {
				t.Fatalf("acme: %d %s, want 202 new", a.status, a.raw)
			}
			if g.status != http.StatusAccepted || g.body["duplicate"] != false {
				t.Fatalf("globex after acme: %d %s, want 202 new", g.status, g.raw)
			}
			if tt.header != nil && g.str("id") == a.str("id") {
				t.Fatalf("globex was answered with acme's event id %s", a.str("id"))
			}
			// Within one tenant it still is a duplicate.
			if again := do(t, h, "POST", "/v1/events", tt.acme, as("tok-acme", tt.header...)...); again.body["duplicate"] != true || again.str("id") != a.str("id") {
				t.Fatalf("acme again: %s, want duplicate of %s", again.raw, a.str("id"))
			}
		})
	}

	byTenant := map[string]int{}
	for _, r := range e.records(t) {
		ev, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		byTenant[ev.EndpointID+ev.Tenant]++
	}
	if byTenant["acme-ep"] != 2 || byTenant["globex-ep"] != 2 || byTenant["acme"] != 1 || byTenant["globex"] != 1 {
		t.Fatalf("records per address %v, want each tenant's events written", byTenant)
	}

	// The index rebuilt at startup keeps the tenants apart too.
	restarted := twoTenantsServer(t, e)
	follow(t, restarted, e.producer)
	h = restarted.Handler()
	if res := do(t, h, "POST", "/v1/events", `{"id":"shared-id-1","type":"t","endpoint_id":"acme-ep","payload":1}`, as("tok-acme")...); res.body["duplicate"] != true {
		t.Fatalf("acme after restart: %s, want duplicate", res.raw)
	}
	if res := do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"globex-ep","payload":1}`, as("tok-globex", "Idempotency-Key", "order-42")...); res.body["duplicate"] != true {
		t.Fatalf("globex key after restart: %s, want duplicate", res.raw)
	}
	if res := do(t, h, "POST", "/v1/events", `{"id":"shared-id-1","type":"t","endpoint_id":"ep_1","payload":1}`); res.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", res.status)
	}
}

func twoTenantsServer(t *testing.T, e *env) *Server {
	t.Helper()
	return e.server(t, func(c *Config) {
		c.Tokens = []Token{
			token("producer-acme", "tok-acme", []string{"acme"}, ScopeIngest, ScopeAdmin),
			token("producer-globex", "tok-globex", []string{"globex"}, ScopeIngest, ScopeAdmin),
		}
	})
}

// An endpoint the token may not see is answered exactly like one that does
// not exist, and no answer names another tenant.
func TestInvisibleEndpointLooksMissing(t *testing.T) {
	e := newEnv(t)
	h := twoTenants(t, e).Handler()

	for _, tt := range []struct {
		name   string
		method string
		path   string
		body   string
	}{
		{"send an event", "POST", "/v1/events", `{"type":"t","endpoint_id":"%s","payload":1}`},
		{"send in a batch", "POST", "/v1/events/batch", `{"events":[{"type":"t","endpoint_id":"%s","payload":1}]}`},
		{"get", "GET", "/v1/endpoints/%s", ``},
		{"patch", "PATCH", "/v1/endpoints/%s", `{"timeout_ms":1000}`},
		{"rotate", "POST", "/v1/endpoints/%s/rotate-secret", `{}`},
		{"delete", "DELETE", "/v1/endpoints/%s", ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			call := func(id string) response {
				path, body := tt.path, tt.body
				if strings.Contains(path, "%s") {
					path = strings.Replace(path, "%s", id, 1)
				} else {
					body = strings.Replace(body, "%s", id, 1)
				}
				return do(t, h, tt.method, path, body, as("tok-acme", "Content-Type", "application/json")...)
			}
			hidden, missing := call("globex-ep"), call("no-such-ep")
			norm := func(r response) string { return strings.ReplaceAll(r.raw, "no-such-ep", "globex-ep") }
			if hidden.status != missing.status || norm(hidden) != norm(missing) {
				t.Fatalf("another tenant's endpoint: %d %s; a missing one: %d %s; want the same answer", hidden.status, hidden.raw, missing.status, missing.raw)
			}
			if strings.Contains(hidden.raw, "globex\"") || strings.Contains(hidden.raw, "tenant \"") {
				t.Fatalf("answer names the other tenant: %s", hidden.raw)
			}
		})
	}
}

// Records without the hookline-tenant header (written before it existed,
// or straight to Kafka) are filed at startup under their own tenant, or
// their endpoint's: a retry after an upgrade is still a duplicate for that
// tenant, and nobody else's.
func TestDedupeRebuildOfUnstampedRecords(t *testing.T) {
	e := newEnv(t)
	twoTenants(t, e)
	var recs []*kgo.Record
	for _, ev := range []envelope.Event{
		{ID: "old-1", Type: "t", EndpointID: "acme-ep", Payload: []byte("1")},
		{ID: "old-2", Type: "t", Tenant: "globex", Payload: []byte("1")},
	} {
		r, err := envelope.Record(eventsTopic, ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := twoTenantsServer(t, e)
	follow(t, s, e.producer)
	h := s.Handler()
	for _, tt := range []struct {
		name, token, body string
		dup               bool
	}{
		{"acme retries its endpoint's event", "tok-acme", `{"id":"old-1","type":"t","endpoint_id":"acme-ep","payload":1}`, true},
		{"globex uses acme's id", "tok-globex", `{"id":"old-1","type":"t","endpoint_id":"globex-ep","payload":1}`, false},
		{"globex retries its fan-out", "tok-globex", `{"id":"old-2","type":"t","tenant":"globex","payload":1}`, true},
		{"acme uses globex's id", "tok-acme", `{"id":"old-2","type":"t","tenant":"acme","payload":1}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, "POST", "/v1/events", tt.body, as(tt.token)...)
			if res.status != http.StatusAccepted || res.body["duplicate"] != tt.dup {
				t.Fatalf("answer %d %s, want duplicate %v", res.status, res.raw, tt.dup)
			}
		})
	}
}

// A tenant's token creates endpoints in its own id namespace only, so
// trying an id another tenant holds is answered exactly like trying a free
// one: the answer cannot tell them apart.
func TestTenantTokensNameEndpointsInTheirOwnNamespace(t *testing.T) {
	e := newEnv(t)
	h := twoTenants(t, e).Handler()
	create := func(body string) response {
		return do(t, h, "POST", "/v1/endpoints", body, as("tok-acme", "Content-Type", "application/json")...)
	}
	taken := create(`{"id":"globex-ep","url":"https://example.com/hook","tenant":"acme"}`)
	free := create(`{"id":"no-such-ep","url":"https://example.com/hook","tenant":"acme"}`)
	if taken.status != http.StatusBadRequest || taken.status != free.status || taken.raw != free.raw {
		t.Fatalf("an id globex holds: %d %s; a free one: %d %s; want the same 400", taken.status, taken.raw, free.status, free.raw)
	}
	if ok := create(`{"id":"acme.billing","url":"https://example.com/hook","tenant":"acme"}`); ok.status != http.StatusCreated {
		t.Fatalf("an id in acme's namespace: %d %s, want 201", ok.status, ok.raw)
	}
	gen := create(`{"url":"https://example.com/hook","tenant":"acme"}`)
	if id, _ := gen.body["id"].(string); gen.status != http.StatusCreated || !strings.HasPrefix(id, "acme.ep_") {
		t.Fatalf("a generated id: %d %s, want 201 with an id in acme's namespace", gen.status, gen.raw)
	}
}
