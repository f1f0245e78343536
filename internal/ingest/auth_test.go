package ingest

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"
)

func token(name, secret string, tenants []string, scopes ...Scope) Token {
	return Token{Name: name, Hash: sha256.Sum256([]byte(secret)), Scopes: scopes, Tenants: tenants}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, func(c *Config) {
		c.Tokens = []Token{
			token("producer", "tok-ingest", nil, ScopeIngest),
			token("acme-producer", "tok-acme", []string{"acme"}, ScopeIngest),
			token("ops", "tok-admin", nil, ScopeAdmin),
			token("acme-admin", "tok-acme-admin", []string{"acme"}, ScopeAdmin),
		}
	})
	h := s.Handler()
	event := `{"type":"order.created","tenant":"acme","payload":{}}`
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	tests := []struct {
		name         string
		method, path string
		body         string
		header       []string
		want         int
	}{
		{"no token", "POST", "/v1/events", event, nil, http.StatusUnauthorized},
		{"not bearer", "POST", "/v1/events", event, []string{"Authorization", "Basic dG9rLWluZ2VzdDo="}, http.StatusUnauthorized},
		{"unknown token", "POST", "/v1/events", event, bearer("tok-nope"), http.StatusUnauthorized},
		{"ingest token posts", "POST", "/v1/events", event, bearer("tok-ingest"), http.StatusAccepted},
		{"lower-case scheme", "POST", "/v1/events", event, []string{"Authorization", "bearer tok-ingest"}, http.StatusAccepted},
		{"admin token cannot post events", "POST", "/v1/events", event, bearer("tok-admin"), http.StatusForbidden},
		{"ingest token cannot list endpoints", "GET", "/v1/endpoints", "", bearer("tok-ingest"), http.StatusForbidden},
		{"ingest token cannot create endpoints", "POST", "/v1/endpoints", `{"url":"https://example.com"}`, bearer("tok-ingest"), http.StatusForbidden},
		{"admin token lists endpoints", "GET", "/v1/endpoints", "", bearer("tok-admin"), http.StatusOK},
		{"tenant token, own tenant", "POST", "/v1/events", event, bearer("tok-acme"), http.StatusAccepted},
		{"tenant token, other tenant", "POST", "/v1/events", `{"type":"x","tenant":"globex","payload":{}}`, bearer("tok-acme"), http.StatusForbidden},
		{"tenant token, endpoint of no tenant (looks missing)", "POST", "/v1/events", `{"type":"x","endpoint_id":"ep_1","payload":{}}`, bearer("tok-acme"), http.StatusUnprocessableEntity},
		{"tenant token in a batch", "POST", "/v1/events/batch", `{"events":[` + event + `,{"type":"x","tenant":"globex","payload":{}}]}`, bearer("tok-acme"), http.StatusForbidden},
		{"tenant admin, other tenant's endpoint", "GET", "/v1/endpoints/ep_1", "", bearer("tok-acme-admin"), http.StatusNotFound},
		{"tenant admin creates for own tenant", "POST", "/v1/endpoints", `{"id":"acme.ep","url":"https://example.com","tenant":"acme"}`, bearer("tok-acme-admin"), http.StatusCreated},
		{"tenant admin creates for other tenant", "POST", "/v1/endpoints", `{"url":"https://example.com","tenant":"globex"}`, bearer("tok-acme-admin"), http.StatusForbidden},
		{"tenant admin moves endpoint away", "PATCH", "/v1/endpoints/acme.ep", `{"tenant":"globex"}`, bearer("tok-acme-admin"), http.StatusForbidden},
		{"tenant admin cannot delete other tenant's", "DELETE", "/v1/endpoints/ep_1", "", bearer("tok-acme-admin"), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, tt.method, tt.path, tt.body, append(tt.header, "Content-Type", "application/json")...)
			if res.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, res.status, res.raw, tt.want)
			}
			if res.status == http.StatusUnauthorized && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %v", res.header)
			}
		})
	}
	res := do(t, h, "GET", "/v1/endpoints", "", bearer("tok-acme-admin")...)
	if eps := res.body["endpoints"].([]any); len(eps) != 1 || eps[0].(map[string]any)["id"] != "acme.ep" {
		t.Fatalf("tenant admin lists %v, want only acme.ep", res.body["endpoints"])
	}
}

// Each token has its own bucket: one over its rate gets 429 with
// Retry-After while another is unaffected; the bucket refills with time.
func TestAuthRateLimit(t *testing.T) {
	e := newEnv(t)
	now := time.Unix(1_700_000_000, 0)
	s := e.server(t, func(c *Config) {
		c.Now = func() time.Time { return now }
		c.Tokens = []Token{token("a", "tok-a", nil, ScopeAdmin), token("b", "tok-b", nil, ScopeAdmin)}
		c.RateLimit = RateLimit{Rate: 1, Burst: 2}
	})
	get := func(tok string) response {
		return do(t, s.Handler(), "GET", "/v1/endpoints", "", "Authorization", "Bearer "+tok)
	}
	for i := range 2 {
		if res := get("tok-a"); res.status != http.StatusOK {
			t.Fatalf("request %d within burst = %d", i+1, res.status)
		}
	}
	res := get("tok-a")
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "1" {
		t.Fatalf("over the burst = %d, Retry-After %q; want 429, 1", res.status, res.header.Get("Retry-After"))
	}
	if res := get("tok-b"); res.status != http.StatusOK {
		t.Fatalf("another token = %d, want 200", res.status)
	}
	now = now.Add(time.Second)
	if res := get("tok-a"); res.status != http.StatusOK {
		t.Fatalf("after refill = %d, want 200", res.status)
	}
}

// Without tokens the API is open, as before.
func TestAuthOffWithoutTokens(t *testing.T) {
	e := newEnv(t)
	res := do(t, e.server(t, nil).Handler(), "GET", "/v1/endpoints", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/endpoints without tokens configured = %d", res.status)
	}
}
