package endpoints

import (
	"context"
	"time"

	"github.com/hookline/hookline/signature"
)

// The operations on endpoints that the HTTP API and the CLI both offer live
// here, once, so that the two cannot apply different rules.

// DefaultRotationOverlap is how long replaced secrets keep signing when a
// rotation does not say.
const DefaultRotationOverlap = 24 * time.Hour

// DefaultDisabledReason is recorded when an endpoint is disabled without a
// reason: a disabled endpoint always says why.
const DefaultDisabledReason = "disabled by an operator"

// Store is what the endpoint operations need of a registry; *Registry
// satisfies it.
type Store interface {
	Get(id string) (Endpoint, bool)
	Create(ctx context.Context, e Endpoint) error
	Update(ctx context.Context, id string, change func(*Endpoint) error) error
}

// Create stores e as a new, enabled endpoint and returns it as stored, with
// its secret in full: the only time it is shown. Without an ID, e gets a
// generated one; without a secret, a new one of scheme (v1 when empty; for
// an unknown scheme the error is a *FieldError naming "scheme").
func Create(ctx context.Context, s Store, e Endpoint, scheme string) (Endpoint, error) {
	if e.ID == "" {
		e.ID = GenerateID()
	}
	if len(e.Secrets) == 0 || e.Secrets[0] == "" {
		if scheme == "" {
			scheme = signature.SchemeV1
		}
		secret, err := GenerateKey(scheme)
		if err != nil {
			return Endpoint{}, &FieldError{"scheme", err.Error()}
		}
		e.Secrets = []string{secret}
	}
	e.Enabled, e.DisabledReason = true, ""
	if err := s.Create(ctx, e); err != nil {
		return Endpoint{}, err
	}
	created, _ := s.Get(e.ID)
	return created, nil
}

// RotateSecret makes secret the current secret of the endpoint, or, when
// secret is empty, a newly generated one of scheme (that of the current
// secret when empty). The replaced secrets keep signing for overlap, then
// expire. It returns the endpoint as stored and the new secret in full.
// A negative overlap is a *FieldError naming "overlap".
func RotateSecret(ctx context.Context, s Store, id, secret, scheme string, overlap time.Duration, now time.Time) (Endpoint, string, error) {
	if overlap < 0 {
		return Endpoint{}, "", &FieldError{"overlap", "must not be negative"}
	}
	fresh := secret
	err := s.Update(ctx, id, func(e *Endpoint) error {
		if secret != "" {
			e.Rotate(secret, overlap, now)
			return nil
		}
		var err error
		fresh, err = e.RotateGenerated(scheme, overlap, now)
		return err
	})
	if err != nil {
		return Endpoint{}, "", err
	}
	e, _ := s.Get(id)
	return e, fresh, nil
}

// Enable turns the endpoint on and forgets why it was disabled.
func (e *Endpoint) Enable() {
	e.Enabled, e.DisabledReason = true, ""
}

// Disable turns the endpoint off and records why; an empty reason records
// DefaultDisabledReason.
func (e *Endpoint) Disable(reason string) {
	if reason == "" {
		reason = DefaultDisabledReason
	}
	e.Enabled, e.DisabledReason = false, reason
}
