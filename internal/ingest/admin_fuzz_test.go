package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
)

// memRegistry is an in-memory Registry that validates writes like the
// real one. It can hold records the real one would refuse to write but
// reads from its topic all the same (no secrets, an undecryptable one).
type memRegistry struct {
	mu  sync.Mutex
	eps map[string]endpoints.Endpoint
}

func (m *memRegistry) Get(id string) (endpoints.Endpoint, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.eps[id]
	return cloneEndpoint(e), ok
}

func (m *memRegistry) ByTenant(tenant, eventType string) []endpoints.Endpoint { return nil }

func (m *memRegistry) List() []endpoints.Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []endpoints.Endpoint
	for _, e := range m.eps {
		out = append(out, cloneEndpoint(e))
	}
	slices.SortFunc(out, func(a, b endpoints.Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (m *memRegistry) Create(_ context.Context, e endpoints.Endpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.eps[e.ID]; ok {
		return endpoints.ErrExists
	}
	if err := e.Validate(); err != nil {
		return err
	}
	m.eps[e.ID] = cloneEndpoint(e)
	return nil
}

func (m *memRegistry) Update(_ context.Context, id string, change func(*endpoints.Endpoint) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.eps[id]
	if !ok {
		return endpoints.ErrNotFound
	}
	e = cloneEndpoint(e)
	if err := change(&e); err != nil {
		return err
	}
	e.ID = id
	if err := e.Validate(); err != nil {
		return err
	}
	m.eps[id] = e
	return nil
}

func (m *memRegistry) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.eps[id]; !ok {
		return endpoints.ErrNotFound
	}
	delete(m.eps, id)
	return nil
}

func cloneEndpoint(e endpoints.Endpoint) endpoints.Endpoint {
	e.Secrets = slices.Clone(e.Secrets)
	e.RetiringSecrets = slices.Clone(e.RetiringSecrets)
	e.EventTypes = slices.Clone(e.EventTypes)
	return e
}

// The admin routes never panic or fail with a 5xx on any input, whatever
// the registry holds, and no answer but the ones that create a secret
// shows a stored secret.
func FuzzAdminAPI(f *testing.F) {
	for _, s := range []struct {
		op   uint8
		id   string
		body string
	}{
		{0, "", `{"id":"ep_new","url":"https://example.com/x","tenant":"acme","event_types":["a.*"],"timeout_ms":1000}`},
		{0, "", `{"url":"https://example.com/x","scheme":"v1a"}`},
		{0, "", `{"id":"ep_acme","url":"https://example.com/x"}`},
		{0, "", `{"url":"ftp://x","secret":"whsec_short","timeout_ms":-1}`},
		{1, "", ``},
		{2, "ep_acme", ``},
		{2, "ep_bare", ``},
		{3, "ep_acme", `{"url":"https://example.com/y","enabled":false,"disabled_reason":"x"}`},
		{3, "ep_bare", `{"secrets":[]}`},
		{3, "ep_acme", `{"secrets":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],"tenant":"globex"}`},
		{3, "ep_enc", `{"event_types":["*"]}`},
		{4, "ep_acme", ``},
		{5, "ep_bare", `{}`},
		{5, "ep_bare", `{"scheme":"v1a","overlap":"1h"}`},
		{5, "ep_enc", ``},
		{5, "ep_acme", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","overlap":"0s"}`},
		{5, "ep_acme", `{"overlap":"-1h"}`},
		{5, "nope", `{"scheme":"v2"}`},
	} {
		f.Add(s.op, s.id, []byte(s.body), false)
		f.Add(s.op, s.id, []byte(s.body), true)
	}
	secret, err := endpoints.GenerateSecret()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op uint8, id string, body []byte, scoped bool) {
		reg := &memRegistry{eps: map[string]endpoints.Endpoint{
			"ep_acme": {ID: "ep_acme", URL: "https://example.com/a", Secrets: []string{secret}, Tenant: "acme", Enabled: true},
			"ep_bare": {ID: "ep_bare", URL: "https://example.com/b", Tenant: "acme", Enabled: true},
			"ep_enc":  {ID: "ep_enc", URL: "https://example.com/c", Secrets: []string{"enc:v1:0badc0de:AAAA"}, Enabled: true},
		}}
		cfg := Config{
			EventsTopic: "events", Registry: reg, Producer: producerFunc(func([]*kgo.Record) {}),
			Now: func() time.Time { return time.Unix(1_700_000_000, 0) },
		}
		if scoped {
			cfg.Tokens = []Token{token("acme-admin", "tok", []string{"acme"}, ScopeAdmin)}
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var method, path string
		switch op % 6 {
		case 0:
			method, path = http.MethodPost, "/v1/endpoints"
		case 1:
			method, path = http.MethodGet, "/v1/endpoints"
		case 2:
			method, path = http.MethodGet, "/v1/endpoints/"+url.PathEscape(id)
		case 3:
			method, path = http.MethodPatch, "/v1/endpoints/"+url.PathEscape(id)
		case 4:
			method, path = http.MethodDelete, "/v1/endpoints/"+url.PathEscape(id)
		default:
			method, path = http.MethodPost, "/v1/endpoints/"+url.PathEscape(id)+"/rotate-secret"
		}
		req := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)

		if w.Code >= 500 {
			t.Fatalf("%s %s %q answered %d: %s", method, path, body, w.Code, w.Body.String())
		}
		// net/http's mux redirects unclean paths ("//rotate-secret")
		// before any route sees them.
		redirect := w.Code/100 == 3
		if w.Code != http.StatusNoContent && !redirect && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s answered %d with a body that is not JSON: %q", method, path, w.Code, w.Body.String())
		}
		shows := op%6 == 0 && w.Code == http.StatusCreated || op%6 == 5 && w.Code == http.StatusOK
		if !shows && strings.Contains(w.Body.String(), strings.TrimPrefix(secret, endpoints.SecretPrefix)) {
			t.Fatalf("%s %s shows a stored secret: %s", method, path, w.Body.String())
		}
		if scoped && w.Code/100 == 2 && strings.Contains(w.Body.String(), `"ep_enc"`) {
			t.Fatalf("a token scoped to acme sees an endpoint without tenant: %s", w.Body.String())
		}
	})
}
