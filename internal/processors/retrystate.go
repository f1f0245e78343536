package processors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers that carry a pair's RetryState through the tier topics and
// into the DLQ. Times are unix milliseconds in decimal.
const (
	HeaderAttempts        = "hookline-attempts"
	HeaderFirstAttempt    = "hookline-first-attempt-ms"
	HeaderEntered         = "hookline-entered-ms"
	HeaderDue             = "hookline-due-ms"
	HeaderLastStatus      = "hookline-last-status"
	HeaderLastError       = "hookline-last-error"
	HeaderErrorClass      = "hookline-error-class"
	HeaderOriginTopic     = "hookline-origin-topic"
	HeaderOriginPartition = "hookline-origin-partition"
	HeaderOriginOffset    = "hookline-origin-offset"
	HeaderEndpoint        = "hookline-endpoint"
	HeaderTier            = "hookline-tier"
	HeaderDLQReason       = "hookline-dlq-reason"
)

// TierDLQ is the Tier of a RetryState in the DLQ.
const TierDLQ = "dlq"

// MaxLastError bounds the stored error text: headers travel with every copy of
// the record, and a receiver's error page must not bloat the topics.
const MaxLastError = 512

var retryHeaders = map[string]bool{
	HeaderAttempts: true, HeaderFirstAttempt: true, HeaderEntered: true, HeaderDue: true,
	HeaderLastStatus: true, HeaderLastError: true, HeaderErrorClass: true,
	HeaderOriginTopic: true, HeaderOriginPartition: true, HeaderOriginOffset: true,
	HeaderEndpoint: true, HeaderTier: true, HeaderDLQReason: true,
}

// ErrRetryHeader wraps every ParseRetryState error.
var ErrRetryHeader = errors.New("bad retry header")

// RetryState is what a tier or DLQ record knows about its pair beyond the
// event itself. It lives in record headers so that the value stays the
// producer's envelope, byte for byte, all the way to the DLQ.
type RetryState struct {
	// Attempts made so far, skipped attempts included.
	Attempts     int
	FirstAttempt time.Time
	// Entered is when the record entered its current topic; Due is when it
	// may be attempted.
	Entered    time.Time
	Due        time.Time
	LastStatus int
	// LastError describes the latest failure only, at most MaxLastError bytes.
	LastError string
	LastClass ErrorClass
	// Origin is where the event was first consumed in the events topic, so an
	// operator can find it and attempt ids stay traceable.
	OriginTopic     string
	OriginPartition int32
	OriginOffset    int64
	EndpointID      string
	// Tier is the tier name of the topic the record is in, or TierDLQ.
	Tier      string
	DLQReason string
}

// Headers encodes the state. Zero times and empty strings are left out; times
// keep millisecond precision.
func (s RetryState) Headers() []kgo.RecordHeader {
	hs := make([]kgo.RecordHeader, 0, len(retryHeaders))
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	addStr := func(k, v string) {
		if v != "" {
			add(k, v)
		}
	}
	addTime := func(k string, t time.Time) {
		if !t.IsZero() {
			add(k, strconv.FormatInt(t.UnixMilli(), 10))
		}
	}
	add(HeaderAttempts, strconv.Itoa(s.Attempts))
	addTime(HeaderFirstAttempt, s.FirstAttempt)
	addTime(HeaderEntered, s.Entered)
	addTime(HeaderDue, s.Due)
	add(HeaderLastStatus, strconv.Itoa(s.LastStatus))
	addStr(HeaderLastError, TruncateError(s.LastError))
	addStr(HeaderErrorClass, string(s.LastClass))
	addStr(HeaderOriginTopic, s.OriginTopic)
	add(HeaderOriginPartition, strconv.FormatInt(int64(s.OriginPartition), 10))
	add(HeaderOriginOffset, strconv.FormatInt(s.OriginOffset, 10))
	addStr(HeaderEndpoint, s.EndpointID)
	addStr(HeaderTier, s.Tier)
	addStr(HeaderDLQReason, s.DLQReason)
	return hs
}

// ParseRetryState decodes the retry headers among hs; other headers are
// ignored and absent ones leave their field zero. The error names the header
// that could not be read.
func ParseRetryState(hs []kgo.RecordHeader) (RetryState, error) {
	var s RetryState
	for _, h := range hs {
		if !retryHeaders[h.Key] {
			continue
		}
		v := string(h.Value)
		var err error
		switch h.Key {
		case HeaderAttempts:
			s.Attempts, err = parseNonNegative(v)
		case HeaderFirstAttempt:
			s.FirstAttempt, err = parseMillis(v)
		case HeaderEntered:
			s.Entered, err = parseMillis(v)
		case HeaderDue:
			s.Due, err = parseMillis(v)
		case HeaderLastStatus:
			s.LastStatus, err = parseNonNegative(v)
		case HeaderLastError:
			s.LastError = v
		case HeaderErrorClass:
			s.LastClass = ErrorClass(v)
		case HeaderOriginTopic:
			s.OriginTopic = v
		case HeaderOriginPartition:
			var p int64
			p, err = strconv.ParseInt(v, 10, 32)
			s.OriginPartition = int32(p)
		case HeaderOriginOffset:
			s.OriginOffset, err = strconv.ParseInt(v, 10, 64)
		case HeaderEndpoint:
			s.EndpointID = v
		case HeaderTier:
			s.Tier = v
		case HeaderDLQReason:
			s.DLQReason = v
		}
		if err != nil {
			return RetryState{}, fmt.Errorf("%w %s: %q: %v", ErrRetryHeader, h.Key, v, err)
		}
	}
	return s, nil
}

// DueOf reads only the due time of a record, for the pipeline's hot path that
// decides whether a tier partition must wait. ok is false when the header is
// missing or unreadable; such a record is due at once.
func DueOf(r *kgo.Record) (time.Time, bool) {
	for _, h := range r.Headers {
		if h.Key == HeaderDue {
			t, err := parseMillis(string(h.Value))
			return t, err == nil
		}
	}
	return time.Time{}, false
}

// CarryHeaders returns the headers of hs that are not retry state, such as
// hookline-envelope and hookline-idempotency-key, to copy onto the record's
// successor before appending its new RetryState.
func CarryHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs))
	for _, h := range hs {
		if !retryHeaders[h.Key] {
			out = append(out, h)
		}
	}
	return out
}

// TruncateError cuts s to at most MaxLastError bytes on a UTF-8 boundary.
func TruncateError(s string) string {
	if len(s) <= MaxLastError {
		return s
	}
	s = s[:MaxLastError]
	// Drop a multi-byte character the cut split in two.
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				s = s[:i]
			}
			break
		}
	}
	return s
}

func parseMillis(v string) (time.Time, error) {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

func parseNonNegative(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = errors.New("negative")
	}
	return n, err
}
