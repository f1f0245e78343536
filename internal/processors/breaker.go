package processors

import (
	"sync"
	"time"
)

// Defaults of BreakerOptions.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 10 * time.Second
)

// BreakerOptions tune a Breaker. Zero values take defaults.
type BreakerOptions struct {
	// Threshold is how many consecutive unresponsive failures open the
	// circuit; default DefaultBreakerThreshold.
	Threshold int
	// Cooldown is how long an open circuit rejects requests before letting a
	// probe through; default DefaultBreakerCooldown.
	Cooldown time.Duration
	// ProbeLease is how long a half-open circuit waits for its probe's report
	// before it lets another probe through, so a probe whose result never
	// arrives (its stage was shut down) cannot wedge the circuit; default 1m,
	// longer than the default endpoint timeout.
	ProbeLease time.Duration
}

// Breaker is a circuit breaker per endpoint. Only unresponsive failures
// (timeouts, refused or reset connections) count: an endpoint answering 500
// answers fast and its failures are cheap, but one that hangs costs a
// partition a full timeout per event, and every other key on that partition
// waits behind it (design invariant 4). While a circuit is open, attempts are
// skipped without a request and the pair moves on through the retry tiers.
//
// A Breaker is safe for concurrent use. Time is passed in, never read.
type Breaker struct {
	opts BreakerOptions

	mu        sync.Mutex
	endpoints map[string]*circuit
}

type circuitState int

const (
	closed circuitState = iota
	open
	halfOpen
)

type circuit struct {
	state    circuitState
	failures int
	// until is the end of the cooldown when open, the end of the probe's
	// lease when half-open.
	until time.Time
}

// NewBreaker returns a Breaker with every circuit closed.
func NewBreaker(opts BreakerOptions) *Breaker {
	if opts.Threshold <= 0 {
		opts.Threshold = DefaultBreakerThreshold
	}
	if opts.Cooldown <= 0 {
		opts.Cooldown = DefaultBreakerCooldown
	}
	if opts.ProbeLease <= 0 {
		opts.ProbeLease = time.Minute
	}
	return &Breaker{opts: opts, endpoints: make(map[string]*circuit)}
}

// Allow reports whether a request to the endpoint may be made now. When it
// returns true for a circuit past its cooldown, the caller holds the single
// probe and must Report its outcome.
func (b *Breaker) Allow(endpointID string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.endpoints[endpointID]
	if c == nil || c.state == closed {
		return true
	}
	if now.Before(c.until) {
		return false
	}
	// Cooldown over, or the previous probe's lease expired: this caller probes.
	c.state = halfOpen
	c.until = now.Add(b.opts.ProbeLease)
	return true
}

// Open counts the endpoints whose circuit is not closed: open, or
// half-open with a probe under way.
func (b *Breaker) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.endpoints {
		if c.state != closed {
			n++
		}
	}
	return n
}

// Report records the outcome of a request Allow let through. opened says
// this report opened the circuit (from closed or half-open).
func (b *Breaker) Report(endpointID string, class ErrorClass, verdict Verdict, now time.Time) (opened bool) {
	unresponsive := verdict == Retryable && (class == ClassTimeout || class == ClassConnection)
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.endpoints[endpointID]
	if !unresponsive {
		// Any answer proves the endpoint responsive; forget its failures.
		// While open, this is a request from before the circuit opened.
		if c != nil && c.state != open {
			delete(b.endpoints, endpointID)
		}
		return false
	}
	if c == nil {
		c = &circuit{}
		b.endpoints[endpointID] = c
	}
	switch c.state {
	case closed:
		c.failures++
		if c.failures >= b.opts.Threshold {
			c.state, c.until = open, now.Add(b.opts.Cooldown)
			return true
		}
	case halfOpen:
		c.state, c.until = open, now.Add(b.opts.Cooldown)
		return true
	case open:
		// A request from before the circuit opened; the cooldown stands.
	}
	return false
}
