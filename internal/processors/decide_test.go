package processors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name    string
		status  int
		err     error
		verdict Verdict
		class   ErrorClass
	}{
		{"200", 200, nil, Delivered, ClassNone},
		{"204", 204, nil, Delivered, ClassNone},
		{"299", 299, nil, Delivered, ClassNone},
		{"301 not followed", 301, nil, Retryable, ClassHTTP3xx},
		{"307", 307, nil, Retryable, ClassHTTP3xx},
		{"400", 400, nil, Permanent, ClassHTTP4xx},
		{"401", 401, nil, Permanent, ClassHTTP4xx},
		{"404", 404, nil, Permanent, ClassHTTP4xx},
		{"408", 408, nil, Retryable, ClassHTTP408},
		{"409 another request holds the id", 409, nil, Retryable, ClassHTTP409},
		{"410", 410, nil, Gone, ClassHTTP410},
		{"429", 429, nil, Retryable, ClassHTTP429},
		{"500", 500, nil, Retryable, ClassHTTP5xx},
		{"502", 502, nil, Retryable, ClassHTTP5xx},
		{"503", 503, nil, Retryable, ClassHTTP5xx},
		{"999 nonsense", 999, nil, Retryable, ClassHTTP5xx},
		{"context deadline", 0, fmt.Errorf("post: %w", context.DeadlineExceeded), Retryable, ClassTimeout},
		{"net timeout", 0, &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}}, Retryable, ClassTimeout},
		{"connection refused", 0, refused, Retryable, ClassConnection},
		{"other transport error, status ignored", 200, errors.New("tls: bad certificate"), Retryable, ClassConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c := Classify(tt.status, tt.err)
			if v != tt.verdict || c != tt.class {
				t.Fatalf("Classify(%d, %v) = %v, %q; want %v, %q", tt.status, tt.err, v, c, tt.verdict, tt.class)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
		ok   bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", " 5 ", 5 * time.Second, true},
		{"negative", "-5", 0, true},
		{"huge", "99999999999999999999", MaxRetryAfter, true},
		{"over a day", "90000", MaxRetryAfter, true},
		{"http date", "Sat, 01 Mar 2025 12:01:30 GMT", 90 * time.Second, true},
		{"http date in the past", "Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"http date next year", "Sun, 01 Mar 2026 12:00:00 GMT", MaxRetryAfter, true},
		{"empty", "", 0, false},
		{"garbage", "soon", 0, false},
		{"fraction", "1.5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := ParseRetryAfter(tt.v, now)
			if d != tt.want || ok != tt.ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, d, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNextStep(t *testing.T) {
	tests := []struct {
		name                               string
		tierIndex, attempts, tiers, maxAtt int
		next                               int
		dlq                                bool
	}{
		{"events stage to first tier", -1, 1, 4, 5, 0, false},
		{"tier 0 to tier 1", 0, 2, 4, 5, 1, false},
		{"tier 2 to last tier", 2, 4, 4, 5, 3, false},
		{"after the last tier", 3, 5, 4, 5, -1, true},
		{"max attempts reached early", 0, 2, 4, 2, -1, true},
		{"max attempts exceeded", 1, 9, 4, 5, -1, true},
		{"no tiers at all", -1, 1, 0, 1, -1, true},
		{"no attempt cap", 1, 100, 4, 0, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, dlq := NextStep(tt.tierIndex, tt.attempts, tt.tiers, tt.maxAtt)
			if next != tt.next || dlq != tt.dlq {
				t.Fatalf("NextStep(%d, %d, %d, %d) = %d, %v; want %d, %v", tt.tierIndex, tt.attempts, tt.tiers, tt.maxAtt, next, dlq, tt.next, tt.dlq)
			}
		})
	}
}

func TestRouteRetry(t *testing.T) {
	delays := []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}
	tests := []struct {
		name       string
		next       int
		retryAfter time.Duration
		tier       int
		wait       time.Duration
	}{
		{"no Retry-After", 0, 0, 0, 0},
		{"within the next tier's delay", 0, 20 * time.Second, 0, 20 * time.Second},
		{"equal to the next tier's delay", 1, 2 * time.Minute, 1, 2 * time.Minute},
		{"beyond the next tier", 0, 31 * time.Second, 1, 31 * time.Second},
		{"skips to the first tier covering it", 0, 5 * time.Minute, 2, 5 * time.Minute},
		{"from a later tier", 2, 11 * time.Minute, 3, 11 * time.Minute},
		{"capped at the longest tier", 0, 24 * time.Hour, 3, time.Hour},
		{"capped in the last tier", 3, 2 * time.Hour, 3, time.Hour},
		{"no next tier", -1, time.Hour, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier, wait := RouteRetry(delays, tt.next, tt.retryAfter)
			if tier != tt.tier || wait != tt.wait {
				t.Fatalf("RouteRetry(%d, %v) = %d, %v; want %d, %v", tt.next, tt.retryAfter, tier, wait, tt.tier, tt.wait)
			}
			if tier >= 0 && wait > delays[tier] {
				t.Fatalf("wait %v is longer than tier %d's delay %v: it would hold the records behind it", wait, tier, delays[tier])
			}
		})
	}
}

func TestDueAt(t *testing.T) {
	entered := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	delay := 30 * time.Second
	tests := []struct {
		name   string
		jitter float64
		u      float64
		want   time.Duration
	}{
		{"no jitter", 0, 0.7, 30 * time.Second},
		{"lowest draw", 0.2, 0, 24 * time.Second},
		{"middle draw", 0.2, 0.5, 30 * time.Second},
		{"high draw", 0.2, 0.75, 33 * time.Second},
		{"u out of range is clamped", 0.2, -3, 24 * time.Second},
		{"jitter above 1 is clamped", 5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DueAt(entered, delay, tt.jitter, tt.u).Sub(entered); got != tt.want {
				t.Fatalf("DueAt = entered+%v, want entered+%v", got, tt.want)
			}
		})
	}
	// The tier is never early and never later than the upper jitter bound.
	for i := range 1000 {
		u := float64(i) / 1000
		due := DueAt(entered, delay, 0.2, u)
		if due.Before(entered.Add(24*time.Second)) || !due.Before(entered.Add(36*time.Second)) {
			t.Fatalf("u=%v: due entered+%v, outside [24s, 36s)", u, due.Sub(entered))
		}
	}
}
