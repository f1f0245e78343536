package endpoints

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateProtection(t *testing.T) {
	good := Endpoint{
		ID:      "ep_1",
		URL:     "https://hooks.example.com/in",
		Secrets: []string{SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 24))},
	}
	for _, tc := range []struct {
		name   string
		change func(*Endpoint)
		field  string // "" = valid
	}{
		{"custom header", func(e *Endpoint) { e.Headers = map[string]string{"X-Tenant": "acme", "Authorization": "Bearer t"} }, ""},
		{"webhook-id", func(e *Endpoint) { e.Headers = map[string]string{"Webhook-Id": "x"} }, "headers[Webhook-Id]"},
		{"webhook-signature lower", func(e *Endpoint) { e.Headers = map[string]string{"webhook-signature": "x"} }, "headers[webhook-signature]"},
		{"content-type", func(e *Endpoint) { e.Headers = map[string]string{"Content-Type": "text/plain"} }, "headers[Content-Type]"},
		{"content-length", func(e *Endpoint) { e.Headers = map[string]string{"CONTENT-LENGTH": "1"} }, "headers[CONTENT-LENGTH]"},
		{"host", func(e *Endpoint) { e.Headers = map[string]string{"Host": "evil"} }, "headers[Host]"},
		{"header name with space", func(e *Endpoint) { e.Headers = map[string]string{"X Y": "1"} }, "headers[X Y]"},
		{"header value with newline", func(e *Endpoint) { e.Headers = map[string]string{"X-A": "1\r\nX-B: 2"} }, "headers[X-A]"},
		{"header value too long", func(e *Endpoint) { e.Headers = map[string]string{"X-A": strings.Repeat("a", MaxHeaderLen+1)} }, "headers[X-A]"},
		{"rate limit", func(e *Endpoint) { e.RateLimit = 20 }, ""},
		{"negative rate limit", func(e *Endpoint) { e.RateLimit = -1 }, "rate_limit"},
		{"huge rate limit", func(e *Endpoint) { e.RateLimit = MaxRateLimit + 1 }, "rate_limit"},
		{"max in flight", func(e *Endpoint) { e.MaxInFlight = 4 }, ""},
		{"negative max in flight", func(e *Endpoint) { e.MaxInFlight = -1 }, "max_in_flight"},
		{"disable after", func(e *Endpoint) { e.DisableAfter = "72h" }, ""},
		{"disable after off", func(e *Endpoint) { e.DisableAfter = "0s" }, ""},
		{"disable after garbage", func(e *Endpoint) { e.DisableAfter = "soon" }, "disable_after"},
		{"disable after negative", func(e *Endpoint) { e.DisableAfter = "-1h" }, "disable_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.change(&e)
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestDisableAfterOr(t *testing.T) {
	def := 120 * time.Hour
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{{"", def}, {"0s", 0}, {"1m", time.Minute}} {
		if got := (Endpoint{DisableAfter: tc.v}).DisableAfterOr(def); got != tc.want {
			t.Errorf("DisableAfterOr(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestRateBurst(t *testing.T) {
	for n, want := range map[int]int{1: 2, 10: 2, 11: 2, 20: 2, 30: 3, 100: 10} {
		if got := RateBurst(n); got != want {
			t.Errorf("RateBurst(%d) = %d, want %d", n, got, want)
		}
		if got := RateBucket(n); got != want-1 {
			t.Errorf("RateBucket(%d) = %d, want %d", n, got, want-1)
		}
	}
}

func TestMaskedHidesHeaderValues(t *testing.T) {
	e := Endpoint{Headers: map[string]string{"Authorization": "Bearer s3cret"}}
	if got := e.Masked().Headers["Authorization"]; got != MaskedHeader {
		t.Fatalf("masked header = %q", got)
	}
	if e.Headers["Authorization"] != "Bearer s3cret" {
		t.Fatal("Masked changed the endpoint it was called on")
	}
}
