package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/config"
)

// serve on loopback answers only requests for a loopback name, on the API
// and on metrics, so a page whose name resolves to 127.0.0.1 (DNS
// rebinding) cannot use either from a browser; and the API takes writes
// only as JSON, so no cross-site form post reaches it.
func TestServeOnLoopbackRefusesForeignHostsAndFormPosts(t *testing.T) {
	h := start(t, testConfig(t))
	metrics := "http://" + h.svc.MetricsAddr()
	for _, tt := range []struct {
		name, method, url, host, contentType string
		want                                 int
	}{
		{"api, loopback host", "GET", h.api + "/v1/endpoints", "", "", http.StatusOK},
		{"api, rebinding host", "GET", h.api + "/v1/endpoints", "attacker.example:8080", "", http.StatusForbidden},
		{"metrics, loopback host", "GET", metrics + "/metrics", "", "", http.StatusOK},
		{"metrics, rebinding host", "GET", metrics + "/metrics", "attacker.example", "", http.StatusForbidden},
		{"api, form post", "POST", h.api + "/v1/endpoints", "", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"api, text post", "POST", h.api + "/v1/endpoints", "", "text/plain", http.StatusUnsupportedMediaType},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(`{"url":"https://example.com/x"}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s (Host %q) = %s, want %d", tt.method, tt.url, tt.host, resp.Status, tt.want)
			}
		})
	}
	if eps := h.env.Registry.List(); len(eps) != 0 {
		t.Fatalf("a refused post created %d endpoints", len(eps))
	}

	// With tokens the API serves any Host: a page cannot send a token it
	// does not know, and a reverse proxy on this host may pass its own.
	cfg := testConfig(t)
	cfg.Tokens = []config.Token{{Name: "ops", Hash: config.HashToken("tok-ops"), Scopes: []string{config.ScopeAdmin}}}
	h = start(t, cfg)
	req, _ := http.NewRequest("GET", h.api+"/v1/endpoints", nil)
	req.Host = "hooks.example.com"
	req.Header.Set("Authorization", "Bearer tok-ops")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with tokens, Host hooks.example.com = %s, want 200", resp.Status)
	}
}
