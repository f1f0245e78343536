// Package endpoints owns the endpoint registry: endpoints live in the compacted
// endpoints topic (key = endpoint id, value = JSON, tombstone = deleted), every
// process materializes that topic into memory and sees changes within seconds.
package endpoints

import (
	"time"
)

// DefaultTimeout is the per-request timeout of an endpoint that sets none.
const DefaultTimeout = 15 * time.Second

// Endpoint is one subscriber destination.
type Endpoint struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	Secrets    []string `json:"secrets"`
	Tenant     string   `json:"tenant,omitempty"`
	EventTypes []string `json:"event_types,omitempty"`
	TimeoutMS  int      `json:"timeout_ms,omitempty"`
	Enabled    bool     `json:"enabled"`
	// DisabledReason says why an endpoint was disabled (for example an HTTP 410).
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Timeout is the request timeout to use for the endpoint.
func (e Endpoint) Timeout() time.Duration {
	if e.TimeoutMS <= 0 {
		return DefaultTimeout
	}
	return time.Duration(e.TimeoutMS) * time.Millisecond
}

// Accepts reports whether the endpoint subscribes to an event type: an empty
// filter accepts every type; a filter entry ending in "*" matches a prefix.
func (e Endpoint) Accepts(eventType string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, t := range e.EventTypes {
		if t == eventType || (len(t) > 0 && t[len(t)-1] == '*' && len(eventType) >= len(t)-1 && eventType[:len(t)-1] == t[:len(t)-1]) {
			return true
		}
	}
	return false
}

// Lookup is the read side of the registry that delivery needs.
type Lookup interface {
	// Get returns the endpoint with the id, if it exists (enabled or not).
	Get(id string) (Endpoint, bool)
	// ByTenant returns the enabled endpoints of a tenant that accept the event type.
	ByTenant(tenant, eventType string) []Endpoint
}
