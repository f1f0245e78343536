package signature

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSecret(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b {
		t.Fatal("two secrets are equal")
	}
	for _, s := range []string{a, b} {
		if err := ValidateSecret(s); err != nil {
			t.Fatalf("ValidateSecret(NewSecret()) = %v", err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
		if err != nil || len(key) != 32 {
			t.Fatalf("secret %q: key of %d bytes, err %v; want 32 bytes", s, len(key), err)
		}
	}
}

func TestValidateSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name    string
		secret  string
		wantErr string
	}{
		{"32 bytes", "whsec_" + b64(32), ""},
		{"24 bytes is the minimum", "whsec_" + b64(24), ""},
		{"23 bytes is too short", "whsec_" + b64(23), "at least 24"},
		{"no prefix", b64(32), `must start with "whsec_"`},
		{"not base64", "whsec_!!!notbase64!!!", "not standard base64"},
		{"url-safe base64 is not std", "whsec_" + strings.Repeat("-_", 16), "not standard base64"},
		{"empty", "", "must start with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSecret(tt.secret)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateSecret = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidSecret) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateSecret = %v, want ErrInvalidSecret mentioning %q", err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, SecretPrefix)) {
				t.Fatalf("error %q leaks the secret", err)
			}
		})
	}
}

// TestReferenceVerifiesOurSignatures is the interoperability promise: a
// receiver using the Standard Webhooks library accepts what we send, also
// while the endpoint rotates secrets, and rejects tampered requests.
func TestReferenceVerifiesOurSignatures(t *testing.T) {
	oldS, newS, other := mustSecret(t), mustSecret(t), mustSecret(t)
	body := []byte(`{"id":"evt_1","type":"order.created","data":{"n":1}}`)
	// The reference library checks the timestamp against the wall clock.
	now := time.Now()

	tests := []struct {
		name     string
		signWith []string
		receiver string // the one secret the receiver knows
		ts       time.Time
		body     []byte // body the receiver gets; nil = as signed
		wantOK   bool
		wantErr  error // our Verify's error when rejected
		refErr   error
	}{
		{name: "one secret", signWith: []string{oldS}, receiver: oldS, ts: now, wantOK: true},
		{name: "rotation, receiver knows old", signWith: []string{oldS, newS}, receiver: oldS, ts: now, wantOK: true},
		{name: "rotation, receiver knows new", signWith: []string{oldS, newS}, receiver: newS, ts: now, wantOK: true},
		{name: "changed body", signWith: []string{oldS}, receiver: oldS, ts: now, body: []byte(`{"id":"evt_1","type":"order.created","data":{"n":2}}`), wantErr: ErrNoMatch, refErr: standardwebhooks.ErrNoMatchingSignature},
		{name: "wrong secret", signWith: []string{oldS, newS}, receiver: other, ts: now, wantErr: ErrNoMatch, refErr: standardwebhooks.ErrNoMatchingSignature},
		{name: "stale timestamp", signWith: []string{oldS}, receiver: oldS, ts: now.Add(-10 * time.Minute), wantErr: ErrTimestamp, refErr: standardwebhooks.ErrMessageTooOld},
		{name: "future timestamp", signWith: []string{oldS}, receiver: oldS, ts: now.Add(10 * time.Minute), wantErr: ErrTimestamp, refErr: standardwebhooks.ErrMessageTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if err := Headers(h, tt.signWith, "msg_1", tt.ts, body); err != nil {
				t.Fatal(err)
			}
			if n := len(strings.Fields(h.Get(HeaderSignature))); n != len(tt.signWith) {
				t.Fatalf("%d signatures for %d secrets", n, len(tt.signWith))
			}
			got := body
			if tt.body != nil {
				got = tt.body
			}
			wh, err := standardwebhooks.NewWebhook(tt.receiver)
			if err != nil {
				t.Fatal(err)
			}
			refErr := wh.Verify(got, h)
			ourErr := Verify([]string{tt.receiver}, h, got, DefaultTolerance, now)
			if tt.wantOK {
				if refErr != nil || ourErr != nil {
					t.Fatalf("reference: %v, ours: %v; want both to accept", refErr, ourErr)
				}
				return
			}
			if !errors.Is(refErr, tt.refErr) {
				t.Errorf("reference Verify = %v, want %v", refErr, tt.refErr)
			}
			if !errors.Is(ourErr, tt.wantErr) {
				t.Errorf("our Verify = %v, want %v", ourErr, tt.wantErr)
			}
		})
	}
}

// TestVerifyAcceptsReferenceSignatures checks the other direction: we verify
// what another Standard Webhooks sender signs.
func TestVerifyAcceptsReferenceSignatures(t *testing.T) {
	secret := mustSecret(t)
	ts := time.Unix(1_700_000_000, 0)
	body := []byte(`{"a":1}`)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_ref", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_ref")
	h.Set(HeaderTimestamp, "1700000000")
	h.Set(HeaderSignature, "v2,ignored "+sig)
	if err := Verify([]string{mustSecret(t), secret}, h, body, time.Minute, ts.Add(30*time.Second)); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	ours, err := Sign([]string{secret}, "msg_ref", ts, body)
	if err != nil || ours != sig {
		t.Fatalf("Sign = %q, %v; reference signs %q", ours, err, sig)
	}
}

func TestVerifyRejects(t *testing.T) {
	secret := mustSecret(t)
	ts := time.Unix(1_700_000_000, 0)
	body := []byte(`{}`)
	valid := http.Header{}
	if err := Headers(valid, []string{secret}, "msg_1", ts, body); err != nil {
		t.Fatal(err)
	}
	with := func(k, v string) http.Header {
		h := valid.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	tests := []struct {
		name      string
		h         http.Header
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{"valid at the tolerance edge", valid, time.Minute, ts.Add(time.Minute), nil},
		{"just past tolerance", valid, time.Minute, ts.Add(time.Minute + time.Second), ErrTimestamp},
		{"zero tolerance means default", valid, 0, ts.Add(4 * time.Minute), nil},
		{"no id", with(HeaderID, ""), time.Minute, ts, ErrMissingHeaders},
		{"no timestamp", with(HeaderTimestamp, ""), time.Minute, ts, ErrMissingHeaders},
		{"no signature", with(HeaderSignature, ""), time.Minute, ts, ErrMissingHeaders},
		{"timestamp not a number", with(HeaderTimestamp, "yesterday"), time.Minute, ts, ErrInvalidHeaders},
		{"other message id", with(HeaderID, "msg_2"), time.Minute, ts, ErrNoMatch},
		{"other version only", with(HeaderSignature, "v2,"+strings.TrimPrefix(valid.Get(HeaderSignature), "v1,")), time.Minute, ts, ErrNoMatch},
		{"garbage signature", with(HeaderSignature, "v1,%%%"), time.Minute, ts, ErrNoMatch},
		{"valid one after 9 others", with(HeaderSignature, strings.Repeat("v1a,AAAA ", MaxSignatures-1)+valid.Get(HeaderSignature)), time.Minute, ts, nil},
		// Checking each costs CPU: an unauthenticated sender could make
		// the receiver check a megabyte of them.
		{"valid one after 10 others", with(HeaderSignature, strings.Repeat("v1a,AAAA ", MaxSignatures)+valid.Get(HeaderSignature)), time.Minute, ts, ErrInvalidHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]string{secret}, tt.h, body, tt.tolerance, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignNeedsValidSecrets(t *testing.T) {
	if _, err := Sign(nil, "m", time.Unix(0, 0), nil); !errors.Is(err, ErrNoSecrets) {
		t.Fatalf("Sign(no secrets) = %v, want ErrNoSecrets", err)
	}
	if _, err := Sign([]string{mustSecret(t), "whsec_short"}, "m", time.Unix(0, 0), nil); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("Sign(bad secret) = %v, want ErrInvalidSecret", err)
	}
	h := http.Header{}
	if err := Headers(h, nil, "m", time.Unix(0, 0), nil); err == nil || len(h) != 0 {
		t.Fatalf("Headers with no secrets: err %v, headers %v; want error and no headers", err, h)
	}
}
