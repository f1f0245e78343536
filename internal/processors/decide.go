package processors

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verdict is what an attempt's result means for the pair (event, endpoint).
type Verdict int

// Verdicts.
const (
	// Delivered: the endpoint acknowledged the event.
	Delivered Verdict = iota
	// Retryable: the failure may pass; try again from the next tier.
	Retryable
	// Permanent: trying again will not help; dead-letter now.
	Permanent
	// Gone: the endpoint said HTTP 410; dead-letter and disable the endpoint,
	// since the receiver told us it will never accept again.
	Gone
)

func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Gone:
		return "gone"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Classify turns the outcome of one HTTP request into a verdict and an error
// class. err is the transport error (no response); status is ignored then.
//
// Redirects are retryable rather than permanent: we do not follow them (a
// redirect could send a signed payload somewhere the owner did not register),
// and a misconfigured URL is often fixed before the tiers run out. Statuses
// outside 100-599 are treated like server errors. A destination the
// DestinationPolicy refuses is permanent: its address will not change by
// waiting, and an operator has to allow it or fix the URL.
func Classify(status int, err error) (Verdict, ErrorClass) {
	if err != nil {
		if errors.Is(err, ErrDestinationRefused) {
			return Permanent, ClassDestinationRefused
		}
		if isTimeout(err) {
			return Retryable, ClassTimeout
		}
		return Retryable, ClassConnection
	}
	switch {
	case status >= 200 && status < 300:
		return Delivered, ClassNone
	case status == http.StatusGone:
		return Gone, ClassHTTP410
	case status == http.StatusTooManyRequests:
		return Retryable, ClassHTTP429
	case status == http.StatusConflict:
		// An idempotent receiver answers 409 while another request holds
		// the same webhook-id (webhook/pgstore does): try again later.
		return Retryable, ClassHTTP409
	case status == http.StatusRequestTimeout:
		return Retryable, ClassHTTP408
	case status >= 400 && status < 500:
		return Permanent, ClassHTTP4xx
	case status >= 300 && status < 400:
		return Retryable, ClassHTTP3xx
	default:
		return Retryable, ClassHTTP5xx
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// MaxRetryAfter caps a Retry-After so that a typo on the receiver's side
// cannot park a pair for months.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value, either delta-seconds or an
// HTTP-date, as a wait from now. A time in the past is 0; waits are capped at
// MaxRetryAfter. ok is false when v is empty or unreadable.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return clampWait(n, time.Second), true
	} else if errors.Is(err, strconv.ErrRange) {
		if v[0] == '-' {
			return 0, true
		}
		return MaxRetryAfter, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return clampWait(int64(t.Sub(now)), 1), true
}

// clampWait returns n units bounded to [0, MaxRetryAfter] without overflowing.
func clampWait(n int64, unit time.Duration) time.Duration {
	switch {
	case n <= 0:
		return 0
	case n >= int64(MaxRetryAfter/unit):
		return MaxRetryAfter
	}
	return time.Duration(n) * unit
}

// NextStep decides where a pair goes after a retryable failure. tierIndex is
// the stage that just attempted (-1 for the events stage), attempts counts
// every attempt so far including that one. The pair moves to the next tier
// until the tiers run out or maxAttempts is reached (maxAttempts <= 0: no cap
// beyond the tiers); then it goes to the DLQ and nextTier is -1.
func NextStep(tierIndex, attempts, numTiers, maxAttempts int) (nextTier int, dlq bool) {
	next := tierIndex + 1
	if next < 0 || next >= numTiers || (maxAttempts > 0 && attempts >= maxAttempts) {
		return -1, true
	}
	return next, false
}

// RouteRetry picks the tier a retryable failure waits in, given every
// tier's delay, the tier next that NextStep chose, and the Retry-After the
// endpoint asked for (0 if none). A record waits in a tier partition in
// front of the records that entered after it; if it waited there longer
// than the tier's delay, it would be due after them and hold their reads
// ahead. So a Retry-After longer than next's delay moves the record to the
// first later tier whose delay covers it (the tiers in between are not
// attempts: the attempt count goes up once, for the attempt made). A
// Retry-After longer than the longest delay of the tiers left is capped at
// it. wait is the Retry-After to honour: the record is due at the later of
// next's own due time and wait, not at the delay of the tier it waits in.
func RouteRetry(delays []time.Duration, next int, retryAfter time.Duration) (tier int, wait time.Duration) {
	if next < 0 || next >= len(delays) {
		return next, 0
	}
	longest := next
	for j := next; j < len(delays); j++ {
		if delays[j] >= retryAfter {
			return j, max(retryAfter, 0)
		}
		if delays[j] > delays[longest] {
			longest = j
		}
	}
	return longest, delays[longest]
}

// DueAt is when a record that entered a tier at entered may be attempted:
// entered + delay scaled by a factor uniformly drawn from [1-jitter, 1+jitter)
// with u in [0,1). Jitter spreads retries of an outage so the endpoint is not
// hit by all of them at once when it comes back. The result is never earlier
// than entered + delay*(1-jitter), which is what "a tier is never early"
// (design invariant 3) means with jitter. jitter is clamped to [0,1] and u to
// [0,1).
func DueAt(entered time.Time, delay time.Duration, jitter float64, u float64) time.Time {
	jitter = min(max(jitter, 0), 1)
	if !(u >= 0) { // also catches NaN
		u = 0
	}
	u = min(u, 1)
	factor := 1 + jitter*(2*u-1)
	return entered.Add(time.Duration(float64(delay) * factor))
}
