package signature

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func mustKey(t *testing.T, scheme string) string {
	t.Helper()
	k, err := NewKey(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPublic(t *testing.T, signingKey string) string {
	t.Helper()
	p, err := PublicKey(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func headersFor(t *testing.T, secrets []string, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	if err := Headers(h, secrets, id, ts, body); err != nil {
		t.Fatal(err)
	}
	return h
}

// The key formats are pinned with RFC 8032's first test vector: a whsk_ key
// is the base64 of the 32-byte seed, its whpk_ key the base64 of the public
// key, and a v1a signature is ed25519 over id.timestamp.body.
func TestV1aKeyFormat(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	sk := SigningKeyPrefix + base64.StdEncoding.EncodeToString(seed)
	if got, want := mustPublic(t, sk), PublicKeyPrefix+base64.StdEncoding.EncodeToString(pub); got != want {
		t.Fatalf("PublicKey = %s, want %s", got, want)
	}
	// The 64-byte private key form is the same key.
	full := SigningKeyPrefix + base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed))
	if mustPublic(t, full) != mustPublic(t, sk) {
		t.Fatal("64-byte private key has another public key than its seed")
	}
	ts := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	sig, err := Sign([]string{sk}, "evt_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(sig, "v1a,")
	if !ok {
		t.Fatalf("signature %q does not start with v1a,", sig)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, fmt.Appendf(nil, "evt_1.%d.%s", ts.Unix(), body), b) {
		t.Fatal("v1a signature does not verify with crypto/ed25519 over id.timestamp.body")
	}
}

func TestV1aKeyValidation(t *testing.T) {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	good := ed25519.NewKeyFromSeed(make([]byte, 32))
	bad := append([]byte(nil), good...)
	bad[40] ^= 1
	tests := []struct {
		name, key, wantErr string
	}{
		{"seed", "whsk_" + b64(good.Seed()), ""},
		{"private key", "whsk_" + b64(good), ""},
		{"mismatched public half", "whsk_" + b64(bad), "does not match"},
		{"wrong length", "whsk_" + b64(make([]byte, 31)), "want a 32-byte seed"},
		{"not base64", "whsk_***", "not standard base64"},
		{"public key is not a signing key", "whpk_" + b64(good.Public().(ed25519.PublicKey)), "must start with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSecret(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSecret) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateSecret = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(tt.key, "whsk_")) {
				t.Fatal("error contains the key")
			}
		})
	}
}

// v1a: the public key verifies; a changed body, another key pair or a
// stale timestamp do not.
func TestV1aVerify(t *testing.T) {
	sk, other := mustKey(t, SchemeV1a), mustKey(t, SchemeV1a)
	pk := mustPublic(t, sk)
	now := time.Now()
	body := []byte(`{"a":1}`)
	h := headersFor(t, []string{sk}, "msg_1", now, body)
	if err := Verify([]string{pk}, h, body, 0, now); err != nil {
		t.Fatalf("public key: %v", err)
	}
	if err := Verify([]string{sk}, h, body, 0, now); err != nil {
		t.Fatalf("signing key: %v", err)
	}
	if err := Verify([]string{pk}, h, []byte(`{"a":2}`), 0, now); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("changed body: %v", err)
	}
	if err := Verify([]string{mustPublic(t, other)}, h, body, 0, now); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("other key: %v", err)
	}
	if err := Verify([]string{pk}, h, body, 0, now.Add(6*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("stale: %v", err)
	}
	// A v1 secret never checks a v1a signature, and vice versa.
	if err := Verify([]string{mustSecret(t)}, h, body, 0, now); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("v1 secret against v1a signature: %v", err)
	}
}

// Rotation: during the overlap a delivery carries a signature per secret,
// and a receiver holding either the old or the new secret accepts it, with
// the reference library for v1 and with Verify for v1a. Mixed v1 and v1a
// (moving an endpoint from HMAC to ed25519) works the same way: the
// reference library, which knows only v1, skips the v1a signature.
func TestRotationVerifiesWithEitherKey(t *testing.T) {
	v1old, v1new := mustSecret(t), mustSecret(t)
	v1aold, v1anew := mustKey(t, SchemeV1a), mustKey(t, SchemeV1a)
	now := time.Now()
	body := []byte(`{"type":"order.created"}`)
	tests := []struct {
		name     string
		secrets  []string
		verifier []string // keys a receiver may hold, each alone must verify
	}{
		{"v1 alone", []string{v1new}, []string{v1new}},
		{"v1 rotation", []string{v1new, v1old}, []string{v1new, v1old}},
		{"v1a alone", []string{v1anew}, []string{mustPublic(t, v1anew)}},
		{"v1a rotation", []string{v1anew, v1aold}, []string{mustPublic(t, v1anew), mustPublic(t, v1aold)}},
		{"v1 to v1a", []string{v1anew, v1old}, []string{mustPublic(t, v1anew), v1old}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headersFor(t, tt.secrets, "msg_rot", now, body)
			if n := len(strings.Fields(h.Get(HeaderSignature))); n != len(tt.secrets) {
				t.Fatalf("%d signatures for %d secrets", n, len(tt.secrets))
			}
			for _, k := range tt.verifier {
				if err := Verify([]string{k}, h, body, 0, now); err != nil {
					t.Errorf("Verify with %s…: %v", k[:5], err)
				}
				if strings.HasPrefix(k, SecretPrefix) {
					wh, err := standardwebhooks.NewWebhook(k)
					if err != nil {
						t.Fatal(err)
					}
					if err := wh.Verify(body, h); err != nil {
						t.Errorf("reference library with a v1 secret: %v", err)
					}
					if err := wh.Verify([]byte(`{"type":"order.deleted"}`), h); err == nil {
						t.Error("reference library accepted a changed body")
					}
				}
			}
		})
	}
	// After the overlap only the new secret signs; the old one no longer
	// verifies.
	h := headersFor(t, []string{v1new}, "msg_after", now, body)
	wh, _ := standardwebhooks.NewWebhook(v1old)
	if err := wh.Verify(body, h); err == nil {
		t.Fatal("reference library accepted a signature of a retired secret")
	}
}

// The Standard Webhooks reference library (Go, v0.0.1) implements v1 only:
// it skips v1a signatures, so a v1a-only request is "no matching signature"
// to it. Receivers of v1a endpoints verify with this package (or the
// receiver library in webhook/).
func TestReferenceLibrarySkipsV1a(t *testing.T) {
	sk := mustKey(t, SchemeV1a)
	body := []byte(`{}`)
	h := headersFor(t, []string{sk}, "msg_1", time.Now(), body)
	wh, err := standardwebhooks.NewWebhook(mustSecret(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Fatalf("reference library on a v1a-only request: %v, want ErrNoMatchingSignature", err)
	}
}
