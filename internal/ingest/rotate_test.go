package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
)

// A v1a endpoint is created with a whsk_ key and shows its whpk_ public
// key; rotate-secret answers the new secret once and keeps the old one
// signing for the overlap; list output never shows a secret in full.
func TestCreateV1aAndRotate(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()
	res := do(t, h, "POST", "/v1/endpoints", `{"id":"ep_ed","url":"https://example.com/ed","scheme":"v1a"}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.raw)
	}
	first := res.body["secrets"].([]any)[0].(string)
	pks, _ := res.body["public_keys"].([]any)
	if !strings.HasPrefix(first, "whsk_") || len(pks) != 1 || !strings.HasPrefix(pks[0].(string), "whpk_") {
		t.Fatalf("v1a endpoint: %s", res.raw)
	}

	res = do(t, h, "POST", "/v1/endpoints/ep_ed/rotate-secret", `{"overlap":"1h"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rotate = %d %s", res.status, res.raw)
	}
	fresh := res.body["secrets"].([]any)[0].(string)
	if !strings.HasPrefix(fresh, "whsk_") || fresh == first {
		t.Fatalf("rotation answered %s", res.raw)
	}
	ep, _ := e.registry.Get("ep_ed")
	if ep.Secrets[0] != fresh || len(ep.RetiringSecrets) != 1 || ep.RetiringSecrets[0].Secret != first {
		t.Fatalf("after rotation: %+v", ep)
	}
	if len(ep.PublicKeys()) != 2 {
		t.Fatalf("public keys during overlap: %v", ep.PublicKeys())
	}

	res = do(t, h, "POST", "/v1/endpoints/ep_1/rotate-secret", `{"scheme":"v1a","overlap":"0s"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rotate ep_1 = %d %s", res.status, res.raw)
	}
	if ep, _ := e.registry.Get("ep_1"); len(ep.RetiringSecrets) != 0 || !strings.HasPrefix(ep.Secrets[0], "whsk_") {
		t.Fatalf("rotation without overlap: %+v", ep)
	}
	for _, bad := range []string{`{"overlap":"-1h"}`, `{"scheme":"v2"}`, `{"secret":"whsec_short"}`} {
		if res := do(t, h, "POST", "/v1/endpoints/ep_1/rotate-secret", bad); res.status != http.StatusBadRequest {
			t.Errorf("rotate %s = %d %s, want 400", bad, res.status, res.raw)
		}
	}
	if res := do(t, h, "POST", "/v1/endpoints/nope/rotate-secret", ``); res.status != http.StatusNotFound {
		t.Errorf("rotate unknown = %d", res.status)
	}

	res = do(t, h, "GET", "/v1/endpoints", "")
	for _, s := range []string{first, fresh} {
		if strings.Contains(res.raw, strings.TrimPrefix(s, "whsk_")) {
			t.Fatalf("list shows a secret: %s", res.raw)
		}
	}
}

// An endpoint record without a current secret (written to the topic by
// hand, or by an older tool) cannot be rotated without saying which scheme
// to generate: 400 naming scheme, not a panic. With a scheme, the rotation
// gives it a secret.
func TestRotateWithoutCurrentSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		h := e.server(t, nil).Handler()
		rec := &kgo.Record{Topic: endpointsTopic, Key: []byte("ep_bare"), Value: []byte(`{"id":"ep_bare","url":"https://example.com/bare","secrets":[],"enabled":true}`)}
		if err := e.producer.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// The registry reads the record from its topic; the bubble's clock is
		// virtual, so the poll costs no real time.
		deadline := time.Now().Add(10 * time.Second)
		for _, ok := e.registry.Get("ep_bare"); !ok; _, ok = e.registry.Get("ep_bare") {
			if time.Now().After(deadline) {
				t.Fatal("the registry never saw ep_bare")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if res := do(t, h, "POST", "/v1/endpoints/ep_bare/rotate-secret", `{}`); res.status != http.StatusBadRequest || res.str("field") != "scheme" {
			t.Fatalf("rotate = %d %s, want 400 naming scheme", res.status, res.raw)
		}
		if res := do(t, h, "POST", "/v1/endpoints/ep_bare/rotate-secret", `{"scheme":"v1"}`); res.status != http.StatusOK {
			t.Fatalf("rotate with a scheme = %d %s, want 200", res.status, res.raw)
		}
		if ep, _ := e.registry.Get("ep_bare"); len(ep.Secrets) != 1 || endpoints.CheckSecret(ep.Secrets[0]) != nil {
			t.Fatalf("after rotation: %+v", ep.Masked())
		}
	})
}
