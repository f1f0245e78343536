package ingest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scope is what a token may do.
type Scope string

// Scopes.
const (
	// ScopeIngest may post events (/v1/events, /v1/events/batch).
	ScopeIngest Scope = "ingest"
	// ScopeAdmin may manage endpoints (/v1/endpoints...).
	ScopeAdmin Scope = "admin"
)

// Token is one bearer token the API accepts, known only by its SHA-256.
type Token struct {
	// Name identifies the token in logs and metrics.
	Name string
	// Hash is the SHA-256 of the token.
	Hash [sha256.Size]byte
	// Scopes the token carries.
	Scopes []Scope
	// Tenants the token may act for; empty means every tenant.
	Tenants []string
}

// RateLimit bounds the requests of each token: Rate per second on average,
// Burst at once. A zero Rate means unlimited.
type RateLimit struct {
	Rate  float64
	Burst int
}

// principal is the authenticated token of a request.
type principal struct {
	token   *Token
	limiter *bucket
}

type principalKey struct{}

// allowedTenant reports whether the request's token may act for tenant.
// With authentication off every tenant is allowed.
// tenantScoped reports whether the request's token is limited to tenants.
func tenantScoped(ctx context.Context) bool {
	p, ok := ctx.Value(principalKey{}).(*principal)
	return ok && len(p.token.Tenants) > 0
}

func allowedTenant(ctx context.Context, tenant string) bool {
	p, ok := ctx.Value(principalKey{}).(*principal)
	if !ok || len(p.token.Tenants) == 0 {
		return true
	}
	return slices.Contains(p.token.Tenants, tenant)
}

// auth checks bearer tokens: no or unknown token is 401, a token without the
// route's scope is 403, a token over its rate is 429.
type auth struct {
	byHash map[[sha256.Size]byte]*principal
	now    func() time.Time
}

func newAuth(tokens []Token, limit RateLimit, now func() time.Time) *auth {
	a := &auth{byHash: make(map[[sha256.Size]byte]*principal, len(tokens)), now: now}
	for i := range tokens {
		t := &tokens[i]
		p := &principal{token: t}
		if limit.Rate > 0 {
			p.limiter = newBucket(limit.Rate, limit.Burst, now())
		}
		a.byHash[t.Hash] = p
	}
	return a
}

// wrap guards a route that needs scope.
func (a *auth) wrap(scope Scope, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func() {
			// The body is not read: closing the connection answers at
			// once instead of after net/http has drained what the
			// client still sends.
			w.Header().Set("Connection", "close")
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			refuse()
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookline"`)
			writeError(w, http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)", "Authorization")
			return
		}
		// The lookup is by hash: the time it takes says nothing about how
		// close a guess is to a real token.
		p, ok := a.byHash[sha256.Sum256([]byte(token))]
		if !ok {
			refuse()
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookline", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown bearer token", "Authorization")
			return
		}
		if !slices.Contains(p.token.Scopes, scope) {
			refuse()
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q lacks the %s scope this route needs", p.token.Name, scope), "Authorization")
			return
		}
		if p.limiter != nil {
			if wait := p.limiter.take(a.now()); wait > 0 {
				refuse()
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				writeError(w, http.StatusTooManyRequests, fmt.Sprintf("token %q is over its rate limit", p.token.Name), "")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// bucket is a token bucket: capacity burst, refilled at rate per second.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	if burst < 1 {
		burst = 1
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends one request and returns 0, or returns how long until one is
// available.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
