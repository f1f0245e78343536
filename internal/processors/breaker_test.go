package processors

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration // since t0
		allow   *bool         // when set: Allow is called and must return this
		class   ErrorClass    // else: Report with this class and verdict
		verdict Verdict
	}
	yes, no := true, false
	allow := func(at time.Duration, want *bool) step { return step{at: at, allow: want} }
	fail := func(at time.Duration, c ErrorClass) step { return step{at: at, class: c, verdict: Retryable} }
	ok := func(at time.Duration) step { return step{at: at, class: ClassNone, verdict: Delivered} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"closed below threshold", []step{
			fail(0, ClassTimeout), fail(0, ClassConnection), allow(0, &yes),
		}},
		{"opens at threshold", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassConnection), allow(time.Second, &no),
		}},
		{"answers do not count: 5xx, 429, 4xx keep it closed", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassHTTP5xx), fail(0, ClassHTTP429),
			{at: 0, class: ClassHTTP4xx, verdict: Permanent}, allow(0, &yes),
		}},
		{"an answer resets the count", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassHTTP5xx), fail(0, ClassTimeout), fail(0, ClassTimeout), allow(0, &yes),
		}},
		{"one probe after cooldown", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassTimeout),
			allow(9*time.Second, &no), allow(10*time.Second, &yes), allow(10*time.Second, &no), allow(11*time.Second, &no),
		}},
		{"probe success closes", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassTimeout),
			allow(10*time.Second, &yes), ok(11 * time.Second), allow(11*time.Second, &yes), allow(11*time.Second, &yes),
		}},
		{"probe failure reopens for a full cooldown", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassTimeout),
			allow(10*time.Second, &yes), fail(12*time.Second, ClassConnection),
			allow(21*time.Second, &no), allow(22*time.Second, &yes),
		}},
		{"late failures while open do not extend the cooldown", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassTimeout),
			fail(5*time.Second, ClassTimeout), allow(10*time.Second, &yes),
		}},
		{"a lost probe is replaced after its lease", []step{
			fail(0, ClassTimeout), fail(0, ClassTimeout), fail(0, ClassTimeout),
			allow(10*time.Second, &yes), allow(69*time.Second, &no), allow(70*time.Second, &yes),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBreaker(BreakerOptions{Threshold: 3, Cooldown: 10 * time.Second, ProbeLease: time.Minute})
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.allow != nil {
					if got := b.Allow("ep", now); got != *s.allow {
						t.Fatalf("step %d: Allow at +%v = %v, want %v", i, s.at, got, *s.allow)
					}
					continue
				}
				b.Report("ep", s.class, s.verdict, now)
			}
		})
	}
}

func TestBreakerIsPerEndpoint(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b := NewBreaker(BreakerOptions{})
	for range 5 {
		b.Report("dead", ClassTimeout, Retryable, now)
	}
	if b.Allow("dead", now) {
		t.Fatal("dead endpoint allowed after 5 timeouts (default threshold)")
	}
	if !b.Allow("alive", now) {
		t.Fatal("another endpoint is blocked")
	}
	if b.Allow("dead", now.Add(9*time.Second)) || !b.Allow("dead", now.Add(10*time.Second)) {
		t.Fatal("default cooldown is not 10s")
	}
}

func TestBreakerOneProbeUnderConcurrency(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b := NewBreaker(BreakerOptions{Threshold: 1, Cooldown: time.Second})
	b.Report("ep", ClassConnection, Retryable, now)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if b.Allow("ep", now.Add(2*time.Second)) {
				allowed.Add(1)
			}
			b.Allow(fmt.Sprint("other", i), now)
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d probes allowed at once, want 1", n)
	}
}

// Open counts the circuits that are not closed: it is what
// hookline_breakers_open exports.
func TestBreakerOpenCountsCircuitsNotClosed(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b := NewBreaker(BreakerOptions{Threshold: 2, Cooldown: time.Second})
	b.Report("slow", ClassTimeout, Retryable, now) // one failure: still closed
	for range 2 {
		b.Report("dead", ClassTimeout, Retryable, now)
		b.Report("gone", ClassConnection, Retryable, now)
	}
	if got := b.Open(); got != 2 {
		t.Fatalf("Open() = %d after two endpoints reached the threshold, want 2", got)
	}
	// dead's probe after the cooldown succeeds: closed again. gone's
	// probe is under way: half-open still counts.
	later := now.Add(time.Second)
	if !b.Allow("dead", later) || !b.Allow("gone", later) {
		t.Fatal("no probe after the cooldown")
	}
	b.Report("dead", ClassNone, Delivered, later)
	if got := b.Open(); got != 1 {
		t.Fatalf("Open() = %d with one circuit half-open, want 1", got)
	}
}
