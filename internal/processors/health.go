package processors

import (
	"sync"
	"time"

	"github.com/hookline/hookline/internal/operational"
)

// DefaultFailingAfter is how many failed requests in a row make an endpoint
// failing (an endpoint.failing event) when its breaker has not opened first.
const DefaultFailingAfter = 10

// DefaultDisableAfter is how long an endpoint may fail without a single
// success before it is disabled, when it does not say (disable_after).
const DefaultDisableAfter = 5 * 24 * time.Hour

// Health follows each endpoint's streak of failed requests in this process
// and says when it turns failing, recovers, or is due to be disabled. It is
// safe for concurrent use; time is passed in, never read.
type Health struct {
	failingAfter int

	mu  sync.Mutex
	eps map[string]*streak
}

type streak struct {
	since    time.Time // first failure since the last success
	failures int
	failing  bool
}

// HealthChange is what one reported request changed.
type HealthChange struct {
	// Failing is set when the endpoint turned failing, for Cause (an
	// operational.Cause* value).
	Failing bool
	Cause   string
	// Recovered is set when a failing endpoint succeeded.
	Recovered bool
	// Disable is set when the endpoint has failed for its disable_after.
	Disable bool
	// Since and Failures describe the streak of failures.
	Since    time.Time
	Failures int
}

// NewHealth follows endpoints, calling one failing after failingAfter
// failures in a row (0: only when its breaker opens).
func NewHealth(failingAfter int) *Health {
	return &Health{failingAfter: failingAfter, eps: make(map[string]*streak)}
}

// Report records the outcome of a request to the endpoint at now:
// delivered or not, whether this failure opened its circuit, and how long
// it may fail before it is disabled (0: never). A streak starts no earlier
// than notBefore, the endpoint's last change: an operator who re-enables or
// fixes an endpoint gives it a whole disable_after again.
func (h *Health) Report(endpointID string, delivered, breakerOpened bool, disableAfter time.Duration, notBefore, now time.Time) HealthChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.eps[endpointID]
	if delivered {
		if s == nil {
			return HealthChange{}
		}
		delete(h.eps, endpointID)
		return HealthChange{Recovered: s.failing, Since: s.since, Failures: s.failures}
	}
	if s == nil {
		s = &streak{since: now}
		h.eps[endpointID] = s
	}
	if s.since.Before(notBefore) {
		s.since = notBefore
	}
	s.failures++
	ch := HealthChange{Since: s.since, Failures: s.failures}
	if !s.failing {
		switch {
		case breakerOpened:
			ch.Failing, ch.Cause = true, operational.CauseBreakerOpen
		case h.failingAfter > 0 && s.failures >= h.failingAfter:
			ch.Failing, ch.Cause = true, operational.CauseConsecutiveFailures
		}
		s.failing = ch.Failing
	}
	ch.Disable = disableAfter > 0 && now.Sub(s.since) >= disableAfter
	return ch
}

// Forget drops the endpoint's streak: it was disabled.
func (h *Health) Forget(endpointID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.eps, endpointID)
}
