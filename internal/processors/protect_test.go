package processors

import (
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

func TestProtectionRateLimit(t *testing.T) {
	p := NewProtection(registry{"lim": {ID: "lim", RateLimit: 20}, "free": {ID: "free"}})
	start := time.Unix(1_700_000_000, 0)
	if _, _, ok := p.Admit("lim", start); ok {
		t.Fatal("a new limiter admitted at once: it must start empty")
	}
	// After a tenth of a second of idleness, the bucket is full: the
	// burst less the request kept in reserve for jitter.
	now := start.Add(100 * time.Millisecond)
	bucket := endpoints.RateBucket(20)
	for i := range bucket {
		if _, _, ok := p.Admit("lim", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	_, retry, ok := p.Admit("lim", now)
	if ok {
		t.Fatal("a request past the burst was admitted")
	}
	if want := now.Add(50 * time.Millisecond); !retry.Equal(want) {
		t.Fatalf("retry at %v, want one token later, %v", retry, want)
	}
	if _, _, ok := p.Admit("lim", retry); !ok {
		t.Fatal("refused at the retry time it gave")
	}
	// In any second of the admitting clock, at most 20 + bucket: drive a
	// second of admissions.
	admitted := 0
	for ms := 0; ms < 1000; ms++ {
		if _, _, ok := p.Admit("lim", retry.Add(time.Duration(ms)*time.Millisecond)); ok {
			admitted++
		}
	}
	if admitted > 20+bucket {
		t.Fatalf("%d admitted in one second, want at most %d", admitted, 20+bucket)
	}
	for range 1000 {
		if _, _, ok := p.Admit("free", now); !ok {
			t.Fatal("an endpoint without limits was refused")
		}
	}
}

func TestProtectionMaxInFlight(t *testing.T) {
	p := NewProtection(registry{"cap": {ID: "cap", MaxInFlight: 2}})
	now := time.Unix(1_700_000_000, 0)
	r1, _, ok1 := p.Admit("cap", now)
	_, _, ok2 := p.Admit("cap", now)
	if !ok1 || !ok2 {
		t.Fatal("refused under the cap")
	}
	if _, retry, ok := p.Admit("cap", now); ok || !retry.After(now) {
		t.Fatalf("third concurrent request: ok=%v retry=%v, want refused with a later retry", ok, retry)
	}
	r1()
	if _, _, ok := p.Admit("cap", now); !ok {
		t.Fatal("refused after a request finished")
	}
}
