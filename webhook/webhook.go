// Package webhook is the receiving side of hookline for endpoint owners who
// write Go: net/http middleware that verifies Standard Webhooks signatures
// (v1 HMAC with a whsec_ secret, v1a ed25519 with a whpk_ public key) and
// the webhook-timestamp, and processes each webhook-id at most once.
//
//	mw, err := webhook.Middleware(webhook.Options{Keys: []string{os.Getenv("WEBHOOK_SECRET")}})
//	if err != nil { ... }
//	http.Handle("POST /webhooks", mw(handler))
//
// A request that fails verification never reaches the handler: 400 for
// missing or malformed headers, 401 for a bad signature or a timestamp more
// than Tolerance (default 5 minutes) away from now, 413 for a body over
// MaxBodyBytes.
//
// hookline delivers at least once, so the same webhook-id can arrive again
// (a retry whose earlier attempt did succeed, or a replay of a captured
// request within the tolerance window). The Store remembers ids: a repeat
// of an id already processed is answered 200 with the header
// Webhook-Duplicate: true, without calling the handler, so that the sender
// stops retrying; a repeat that arrives while the first is still being
// handled gets 503 with Retry-After, so that the sender tries again later.
// An id whose handler answered anything but 2xx (or panicked) is forgotten,
// so the sender's retry is processed.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hookline/hookline/signature"
)

// Defaults of Options.
const (
	DefaultTolerance    = signature.DefaultTolerance
	DefaultTTL          = 24 * time.Hour
	DefaultLease        = 5 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
)

// HeaderDuplicate is set on the answer to a webhook-id already processed.
const HeaderDuplicate = "Webhook-Duplicate"

// Options configure the middleware. Keys is required.
type Options struct {
	// Keys verify signatures: "whsec_" secrets (v1) and "whpk_" public keys
	// (v1a). During a rotation give both the old and the new one.
	Keys []string
	// Tolerance is how far webhook-timestamp may be from now; default 5m.
	Tolerance time.Duration
	// Store remembers processed ids; default a NewMemoryStore.
	Store Store
	// TTL is how long a processed id is remembered; default 24h, at least
	// twice Tolerance (a replay is only possible within the tolerance window,
	// a retry by the sender for longer).
	TTL time.Duration
	// Lease is how long an id stays claimed while its handler runs, so that
	// a crashed receiver does not block the id for the whole TTL; default 5m.
	Lease time.Duration
	// MaxBodyBytes bounds the request body; default 1 MiB.
	MaxBodyBytes int64
	// Now reads the clock; default time.Now.
	Now func() time.Time
}

type ctxKey struct{}

// Delivery is what the middleware verified about a request.
type Delivery struct {
	// ID is the webhook-id: the event id, the same on every attempt.
	ID string
	// Timestamp is the webhook-timestamp: the time of this attempt.
	Timestamp time.Time
}

// FromContext returns the verified delivery of a request the middleware let
// through.
func FromContext(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(ctxKey{}).(Delivery)
	return d, ok
}

// Middleware returns the verifying middleware, or an error if the options
// are unusable (an invalid key, a TTL shorter than twice the tolerance).
func Middleware(o Options) (func(http.Handler) http.Handler, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("webhook: Keys: at least one whsec_ secret or whpk_ public key is required")
	}
	for i, k := range o.Keys {
		if err := signature.ValidateVerifyKey(k); err != nil {
			return nil, fmt.Errorf("webhook: Keys[%d]: %w", i, err)
		}
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < 2*o.Tolerance {
		return nil, fmt.Errorf("webhook: TTL %v is shorter than twice Tolerance (%v): a replay could outlive the memory of its id", o.TTL, 2*o.Tolerance)
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(o.Now)
	}
	return func(next http.Handler) http.Handler {
		return &middleware{o: o, next: next}
	}, nil
}

type middleware struct {
	o    Options
	next http.Handler
}

// ReadVerified reads r's body, at most maxBody bytes, and verifies its
// signature and webhook-timestamp against keys. When it fails it has
// answered w (413 for a body too large, 400 for missing or malformed
// headers, 401 for a bad signature or timestamp) and ok is false. Stores
// other than Store (webhook/pgstore) build their flow on it.
func ReadVerified(w http.ResponseWriter, r *http.Request, keys []string, tolerance time.Duration, maxBody int64, now time.Time) (body []byte, d Delivery, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "webhook body too large", http.StatusRequestEntityTooLarge)
			return nil, Delivery{}, false
		}
		http.Error(w, "read webhook body", http.StatusBadRequest)
		return nil, Delivery{}, false
	}
	if err := signature.Verify(keys, r.Header, body, tolerance, now); err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, signature.ErrMissingHeaders) || errors.Is(err, signature.ErrInvalidHeaders) {
			status = http.StatusBadRequest
		}
		http.Error(w, "webhook verification failed: "+err.Error(), status)
		return nil, Delivery{}, false
	}
	unix, _ := strconv.ParseInt(r.Header.Get(signature.HeaderTimestamp), 10, 64) // Verify parsed it
	return body, Delivery{ID: r.Header.Get(signature.HeaderID), Timestamp: time.Unix(unix, 0)}, true
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, d, verified := ReadVerified(w, r, m.o.Keys, m.o.Tolerance, m.o.MaxBodyBytes, m.o.Now())
	if !verified {
		return
	}
	id := d.ID

	state, err := m.o.Store.Claim(r.Context(), id, m.o.Lease)
	if err != nil {
		http.Error(w, "webhook dedupe store unavailable", http.StatusServiceUnavailable)
		return
	}
	switch state {
	case Processed:
		w.Header().Set(HeaderDuplicate, "true")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "duplicate webhook-id, already processed\n")
		return
	case InFlight:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "this webhook-id is being processed", http.StatusServiceUnavailable)
		return
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, d))
	sw := &statusWriter{ResponseWriter: w}
	ok := false
	defer func() {
		// Forget the claim unless the handler succeeded, also when it
		// panics, so the sender's retry is processed.
		ctx := context.WithoutCancel(r.Context())
		if ok {
			_ = m.o.Store.Done(ctx, id, m.o.TTL)
			return
		}
		_ = m.o.Store.Release(ctx, id)
	}()
	m.next.ServeHTTP(sw, r)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	ok = status >= 200 && status < 300
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
