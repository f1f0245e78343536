package processors

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

// During a rotation's overlap every request carries both signatures and the
// reference library accepts it with the old secret or the new one; after
// the overlap the old secret no longer verifies. A v1a endpoint's requests
// verify with its public key.
func TestSenderSignsDuringRotation(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	s := NewSender(SenderOptions{Destinations: localOnly})
	defer s.Close()
	oldS, newS := newSecret(t), newSecret(t)
	rotatedAt := time.Now()
	ep := endpoints.Endpoint{ID: "ep_rot", URL: rc.URL, Secrets: []string{oldS}, Enabled: true}
	ep.Rotate(newS, 24*time.Hour, rotatedAt)
	body := []byte(`{"id":"evt_1"}`)

	verifies := func(secret string, h http.Header) bool {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.VerifyIgnoringTimestamp(body, h) == nil
	}
	for _, tc := range []struct {
		name     string
		at       time.Time
		sigs     int
		oldValid bool
	}{
		{"during overlap", rotatedAt.Add(23 * time.Hour), 2, true},
		{"after overlap", rotatedAt.Add(24*time.Hour + time.Second), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rc.requests())
			if res := s.Send(context.Background(), ep, "evt_1", tc.at, body); res.Verdict != Delivered {
				t.Fatalf("Send = %+v", res)
			}
			h := rc.requests()[before].header
			if n := len(strings.Fields(h.Get(signature.HeaderSignature))); n != tc.sigs {
				t.Fatalf("%d signatures, want %d", n, tc.sigs)
			}
			if !verifies(newS, h) {
				t.Fatal("the new secret does not verify")
			}
			if verifies(oldS, h) != tc.oldValid {
				t.Fatalf("old secret verifies = %v, want %v", !tc.oldValid, tc.oldValid)
			}
		})
	}

	sk, err := signature.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ep = endpoints.Endpoint{ID: "ep_v1a", URL: rc.URL, Secrets: []string{sk}, Enabled: true}
	now := time.Now()
	before := len(rc.requests())
	if res := s.Send(context.Background(), ep, "evt_2", now, body); res.Verdict != Delivered {
		t.Fatalf("Send v1a = %+v", res)
	}
	h := rc.requests()[before].header
	if !strings.HasPrefix(h.Get(signature.HeaderSignature), "v1a,") {
		t.Fatalf("v1a endpoint signature %q", h.Get(signature.HeaderSignature))
	}
	if err := signature.Verify(ep.PublicKeys(), h, body, 0, now); err != nil {
		t.Fatalf("verify with public key: %v", err)
	}
}
