// Package endpoints owns the endpoint registry: endpoints live in the compacted
// endpoints topic (key = endpoint id, value = JSON, tombstone = deleted), every
// process materializes that topic into memory and sees changes within seconds.
package endpoints

import (
	"slices"
	"time"

	"github.com/hookline/hookline/signature"
)

// DefaultTimeout is the per-request timeout of an endpoint that sets none.
const DefaultTimeout = 15 * time.Second

// Endpoint is one subscriber destination.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secrets sign every request: "whsec_" secrets with v1 (HMAC-SHA256),
	// "whsk_" keys with v1a (ed25519), one signature each.
	Secrets []string `json:"secrets"`
	// RetiringSecrets are secrets being rotated out: requests are still
	// signed with each until it expires, so receivers can switch to the new
	// secret at their pace. Records written before rotation existed have
	// none, and readers that predate it ignore them.
	RetiringSecrets []RetiringSecret `json:"retiring_secrets,omitempty"`
	Tenant          string           `json:"tenant,omitempty"`
	EventTypes      []string         `json:"event_types,omitempty"`
	TimeoutMS       int              `json:"timeout_ms,omitempty"`
	Enabled         bool             `json:"enabled"`
	// Ordering is OrderingBestEffort ("" means it too) or OrderingStrict:
	// the events of one ordering key reach the endpoint in order also
	// across failures (docs/design/strict-ordering.md).
	Ordering string `json:"ordering,omitempty"`
	// OnDeadLetter says what a strict endpoint does with the events behind
	// a dead-lettered one: OnDeadLetterContinue ("" means it too) or
	// OnDeadLetterHold.
	OnDeadLetter string `json:"on_dead_letter,omitempty"`
	// ClientCertPEM and ClientKeyPEM are an optional client certificate
	// (with its chain) and its private key, presented to endpoints that
	// require mutual TLS. The key is encrypted at rest like the secrets.
	ClientCertPEM string `json:"client_cert_pem,omitempty"`
	ClientKeyPEM  string `json:"client_key_pem,omitempty"`
	// Headers are sent with every delivery. They may not set what hookline
	// sets itself (see ReservedHeader).
	Headers map[string]string `json:"headers,omitempty"`
	// RateLimit caps the requests per second to the endpoint in each serve
	// process, with a burst of RateBurst; 0 is no limit. Deliveries over it
	// wait in their lane and use no attempt.
	RateLimit int `json:"rate_limit,omitempty"`
	// MaxInFlight caps the concurrent requests to the endpoint in each
	// serve process; 0 is no cap.
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// DisableAfter is how long the endpoint may fail without a single
	// success before it is disabled, a Go duration; "" is the process's
	// disable_after, "0s" never.
	DisableAfter string `json:"disable_after,omitempty"`
	// DisabledReason says why an endpoint was disabled (for example an HTTP 410).
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Ordering modes of an endpoint.
const (
	OrderingBestEffort = "best_effort"
	OrderingStrict     = "strict"
)

// What a strict endpoint does once the event holding a key is dead-lettered.
const (
	// OnDeadLetterContinue lets the events behind it go on.
	OnDeadLetterContinue = "continue"
	// OnDeadLetterHold keeps the key held until an operator replays the
	// event (hookline dlq replay) or skips it (hookline dlq skip).
	OnDeadLetterHold = "hold"
)

// Strict reports whether the endpoint is in strict ordering mode.
func (e Endpoint) Strict() bool { return e.Ordering == OrderingStrict }

// RetiringSecret is a secret that signs until ExpiresAt.
type RetiringSecret struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SigningSecrets are the secrets requests sent at now are signed with: the
// current ones, then the retiring ones that have not expired.
func (e Endpoint) SigningSecrets(now time.Time) []string {
	out := make([]string, 0, len(e.Secrets)+len(e.RetiringSecrets))
	out = append(out, e.Secrets...)
	for _, r := range e.RetiringSecrets {
		if now.Before(r.ExpiresAt) {
			out = append(out, r.Secret)
		}
	}
	return out
}

// Rotate makes secret the endpoint's only current secret. The secrets it
// replaces keep signing for overlap, then expire by themselves; with an
// overlap of 0 they stop at once. Retiring secrets already expired at now
// are dropped.
func (e *Endpoint) Rotate(secret string, overlap time.Duration, now time.Time) {
	e.PruneRetired(now)
	if overlap > 0 {
		for _, s := range e.Secrets {
			if s != secret {
				e.RetiringSecrets = append(e.RetiringSecrets, RetiringSecret{Secret: s, ExpiresAt: now.Add(overlap).UTC()})
			}
		}
	}
	e.Secrets = []string{secret}
	// Receivers check at most signature.MaxSignatures signatures: past
	// that, the retiring secrets that expire first stop signing now.
	if extra := 1 + len(e.RetiringSecrets) - signature.MaxSignatures; extra > 0 {
		slices.SortStableFunc(e.RetiringSecrets, func(a, b RetiringSecret) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
		e.RetiringSecrets = slices.Clone(e.RetiringSecrets[extra:])
	}
}

// RotateGenerated rotates to a newly generated secret of scheme (v1 or
// v1a) and returns it; with scheme "" the new secret has the scheme of the
// current one. An endpoint without a current secret has no scheme to
// keep: then, and for an unknown scheme, the error is a *FieldError naming
// "scheme". The API and the CLI both rotate through it.
func (e *Endpoint) RotateGenerated(scheme string, overlap time.Duration, now time.Time) (string, error) {
	if scheme == "" {
		if len(e.Secrets) == 0 {
			return "", &FieldError{"scheme", "the endpoint has no current secret whose scheme to keep; give the scheme, v1 or v1a"}
		}
		scheme = signature.Scheme(e.Secrets[len(e.Secrets)-1])
	}
	fresh, err := GenerateKey(scheme)
	if err != nil {
		return "", &FieldError{"scheme", err.Error()}
	}
	e.Rotate(fresh, overlap, now)
	return fresh, nil
}

// PruneRetired drops retiring secrets that expired at now.
func (e *Endpoint) PruneRetired(now time.Time) {
	kept := e.RetiringSecrets[:0]
	for _, r := range e.RetiringSecrets {
		if now.Before(r.ExpiresAt) {
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	e.RetiringSecrets = kept
}

// Timeout is the request timeout to use for the endpoint.
func (e Endpoint) Timeout() time.Duration {
	if e.TimeoutMS <= 0 {
		return DefaultTimeout
	}
	return time.Duration(e.TimeoutMS) * time.Millisecond
}

// RateBurst is the burst of a rate limit of n requests per second: a tenth
// of it, at least 2. No one-second window at the receiver sees more than
// n + RateBurst(n) requests: hookline's bucket holds one token fewer
// (RateBucket), so a request that reaches the receiver up to 1/n s later or
// sooner than its neighbours, through the network or the scheduler of
// either side, still stays within the bound.
func RateBurst(n int) int { return max(2, (n+9)/10) }

// RateBucket is the size of the token bucket that enforces a rate limit of
// n per second: RateBurst(n) less the one request kept in reserve.
func RateBucket(n int) int { return RateBurst(n) - 1 }

// DisableAfterOr is how long the endpoint may fail before it is disabled:
// its own DisableAfter, or def when it sets none; 0 is never. Validate has
// checked the field; a value that does not parse counts as unset.
func (e Endpoint) DisableAfterOr(def time.Duration) time.Duration {
	if e.DisableAfter == "" {
		return def
	}
	d, err := time.ParseDuration(e.DisableAfter)
	if err != nil {
		return def
	}
	return d
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
