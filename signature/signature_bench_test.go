package signature

import (
	"net/http"
	"testing"
	"time"
)

var benchBody = []byte(`{"id":"evt_1","type":"order.created","timestamp":"2025-03-01T12:00:00Z","data":{"order":12345,"amount_cents":4200,"currency":"EUR","note":"benchmark event"}}`)

// BenchmarkHeaders measures signing one request with one secret: decoding
// the secret, the HMAC over id.timestamp.body and setting the three headers,
// as the sender does for every attempt.
func BenchmarkHeaders(b *testing.B) {
	secrets := []string{mustSecretB(b)}
	ts := time.Unix(1_740_830_400, 0)
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 4)
		if err := Headers(h, secrets, "evt_1", ts, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures verifying one signed request, as a receiver does.
func BenchmarkVerify(b *testing.B) {
	secrets := []string{mustSecretB(b)}
	ts := time.Unix(1_740_830_400, 0)
	h := make(http.Header)
	if err := Headers(h, secrets, "evt_1", ts, benchBody); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(secrets, h, benchBody, 5*time.Minute, ts); err != nil {
			b.Fatal(err)
		}
	}
}

func mustSecretB(b *testing.B) string {
	b.Helper()
	s, err := NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
