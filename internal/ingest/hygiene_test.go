package ingest

import (
	"net/http"
	"strings"
	"testing"
)

// Control characters in the fields operators read in logs and the CLI
// (terminal escapes, newlines that fake log lines) are refused with 400
// naming the field, in single events and in batches.
func TestControlCharactersAreRefused(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()
	for _, tt := range []struct {
		name, body string
		header     []string
		field      string
	}{
		{"id", `{"id":"evt\u001b[31m","type":"t","endpoint_id":"ep_1","payload":1}`, nil, "id"},
		{"type", `{"type":"order\ncreated","endpoint_id":"ep_1","payload":1}`, nil, "type"},
		{"type with C1", `{"type":"order\u009bcreated","endpoint_id":"ep_1","payload":1}`, nil, "type"},
		{"ordering key", `{"type":"t","endpoint_id":"ep_1","ordering_key":"k\u0000","payload":1}`, nil, "ordering_key"},
		{"endpoint id", `{"type":"t","endpoint_id":"ep_1\u0007","payload":1}`, nil, "endpoint_id"},
		{"tenant", `{"type":"t","tenant":"acme\r","payload":1}`, nil, "tenant"},
		{"idempotency key", `{"type":"t","endpoint_id":"ep_1","payload":1}`, []string{"Idempotency-Key", "k\x7f"}, "Idempotency-Key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, "POST", "/v1/events", tt.body, tt.header...)
			if res.status != http.StatusBadRequest || res.str("field") != tt.field || !strings.Contains(res.str("error"), "control character") && tt.field != "Idempotency-Key" {
				t.Fatalf("answer %d %s, want 400 naming %s", res.status, res.raw, tt.field)
			}
			if tt.header != nil {
				return
			}
			batch := do(t, h, "POST", "/v1/events/batch", `{"events":[`+tt.body+`]}`)
			if batch.status != http.StatusBadRequest || batch.str("field") != "events[0]."+tt.field {
				t.Fatalf("in a batch: %d %s, want 400 naming events[0].%s", batch.status, batch.raw, tt.field)
			}
		})
	}
	// Printable Unicode is fine.
	if res := do(t, h, "POST", "/v1/events", `{"id":"commande-été-✓","type":"commande.créée","tenant":"acmé","payload":1}`); res.status != http.StatusAccepted {
		t.Fatalf("printable unicode: %d %s", res.status, res.raw)
	}
	if n := len(e.records(t)); n != 1 {
		t.Fatalf("%d records written, want only the printable one", n)
	}
}

// An endpoint URL naming a refused address literally is refused when it is
// registered, as its deliveries would be; the development flag and the
// allowlist admit it.
func TestEndpointURLToARefusedAddress(t *testing.T) {
	e := newEnv(t)
	strict := e.server(t, nil).Handler()
	dev := e.server(t, func(c *Config) { c.Destinations.AllowPrivate = true }).Handler()
	for _, tt := range []struct {
		name, method, path, body string
		h                        http.Handler
		want                     int
	}{
		{"loopback", "POST", "/v1/endpoints", `{"id":"ep_lo","url":"http://127.0.0.1:6379/"}`, strict, http.StatusBadRequest},
		{"metadata", "POST", "/v1/endpoints", `{"id":"ep_md","url":"http://169.254.169.254/latest/meta-data/"}`, strict, http.StatusBadRequest},
		{"patched to loopback", "PATCH", "/v1/endpoints/ep_1", `{"url":"http://[::1]/x"}`, strict, http.StatusBadRequest},
		{"public", "POST", "/v1/endpoints", `{"id":"ep_pub","url":"https://8.8.8.8/hook"}`, strict, http.StatusCreated},
		{"host name, judged when dialed", "POST", "/v1/endpoints", `{"id":"ep_name","url":"https://localhost/hook"}`, strict, http.StatusCreated},
		{"development", "POST", "/v1/endpoints", `{"id":"ep_dev","url":"http://127.0.0.1:9000/hook"}`, dev, http.StatusCreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.h, tt.method, tt.path, tt.body)
			if res.status != tt.want || (tt.want == http.StatusBadRequest && (res.str("field") != "url" || !strings.Contains(res.str("error"), "allow_destinations"))) {
				t.Fatalf("answer %d %s, want %d", res.status, res.raw, tt.want)
			}
		})
	}
	if ep, _ := e.registry.Get("ep_1"); ep.URL != "https://example.com/a" {
		t.Fatalf("ep_1 was moved to %s", ep.URL)
	}
}
