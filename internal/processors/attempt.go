package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// AttemptVersion is the version of the attempt record format (docs/attempts.md).
const AttemptVersion = 1

// Outcome is what came of one attempt.
type Outcome string

// Outcomes of an attempt.
const (
	// OutcomeDelivered: the endpoint answered 2xx.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeRetry: the attempt failed and the pair moves to a retry tier.
	OutcomeRetry Outcome = "retry"
	// OutcomeDeadLettered: the attempt failed for good (permanent error or
	// attempts exhausted) and the pair moves to the DLQ.
	OutcomeDeadLettered Outcome = "dead_lettered"
)

// Attempt is one record of the attempts topic: one per HTTP attempt, or per
// attempt skipped without a request (circuit open, endpoint disabled or gone,
// malformed record). Skipped attempts have Skipped set and StatusCode 0.
type Attempt struct {
	V int `json:"v"`
	// AttemptID is unique per attempt and stable across a replayed
	// transaction: <source topic>/<partition>/<offset>/<endpoint id>.
	AttemptID  string `json:"attempt_id"`
	EventID    string `json:"event_id"`
	EndpointID string `json:"endpoint_id"`
	Tenant     string `json:"tenant,omitempty"`
	EventType  string `json:"event_type"`
	// Attempt counts from 1 for the first delivery attempt of the pair.
	Attempt int `json:"attempt"`
	// Tier is the stage that made the attempt: "events" or a tier name such as "retry.30s".
	Tier          string     `json:"tier"`
	Outcome       Outcome    `json:"outcome"`
	Skipped       bool       `json:"skipped,omitempty"`
	StatusCode    int        `json:"status_code"`
	ErrorClass    ErrorClass `json:"error_class"`
	Error         string     `json:"error,omitempty"`
	LatencyMS     float64    `json:"latency_ms"`
	RequestBytes  int        `json:"request_bytes"`
	ResponseBytes int        `json:"response_bytes"`
	// NextTier is where the pair goes next: a tier name, "dlq", or "" when delivered.
	NextTier     string    `json:"next_tier,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	FirstAttempt time.Time `json:"first_attempt_at"`
}

// AttemptID builds the stable id of the attempt made for a source record.
func AttemptID(topic string, partition int32, offset int64, endpointID string) string {
	var buf [128]byte // one allocation, the string, for the usual lengths
	b := append(buf[:0], topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, '/')
	b = append(b, endpointID...)
	return string(b)
}

// Record encodes the attempt for the attempts topic, keyed by endpoint id so
// one endpoint's attempts stay in order, and keeps the attempt with the
// record for AttemptOf. The value is what json.Marshal
// writes for an Attempt, byte for byte (TestAttemptEncodingMatchesJSON), in
// one allocation: an attempt record is made for every attempt, and
// reflection was most of its cost.
func (a Attempt) Record(topic string) (*kgo.Record, error) {
	a.V = AttemptVersion
	v, err := a.appendJSON(make([]byte, 0, a.sizeHint()))
	if err != nil {
		return nil, fmt.Errorf("encode attempt %s: %w", a.AttemptID, err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(a.EndpointID), Value: v}
	r.Context = context.WithValue(context.Background(), attemptKey{}, &a)
	return r, nil
}

// attemptKey is the key, in the Context of a record Attempt.Record made, of
// the attempt it encodes.
type attemptKey struct{}

// AttemptOf returns what DecodeAttempt reads from an attempts-topic record
// (its times as the record writes them, in their own Location): the attempt Attempt.Record
// kept with it (franz-go's Record.Context is there for such enrichment), so
// that what reads the stage's output on its way out (the metrics wrapper)
// does not decode what was just encoded. A record from elsewhere is
// decoded, and so is one whose strings are not valid UTF-8, which decoding
// would change. Whoever produces the record should set its Context back to
// nil first, so that it is produced under the Produce context, as any
// other record.
func AttemptOf(r *kgo.Record) (Attempt, error) {
	if r.Context != nil {
		if a, ok := r.Context.Value(attemptKey{}).(*Attempt); ok && a.validUTF8() {
			return *a, nil
		}
	}
	return DecodeAttempt(r.Value)
}

func (a *Attempt) validUTF8() bool {
	for _, s := range []string{a.AttemptID, a.EventID, a.EndpointID, a.Tenant, a.EventType, a.Tier, string(a.Outcome), string(a.ErrorClass), a.Error, a.NextTier} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// sizeHint is enough room for the encoded attempt unless its strings need
// escaping.
func (a *Attempt) sizeHint() int {
	// Member names, punctuation, numbers and three timestamps.
	const fixed = 420
	return fixed + len(a.AttemptID) + len(a.EventID) + len(a.EndpointID) + len(a.Tenant) + len(a.EventType) +
		len(a.Tier) + len(a.Outcome) + len(a.ErrorClass) + len(a.Error) + len(a.NextTier)
}

// appendJSON appends the attempt as encoding/json encodes it: the members in
// field order, omitempty members left out when empty, strings escaped as
// json.Marshal escapes them, floats and times formatted as it formats them,
// and the same refusals (NaN or infinite latency, a year outside 0-9999).
func (a *Attempt) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(a.V), 10)
	b = appendMember(b, "attempt_id", a.AttemptID)
	b = appendMember(b, "event_id", a.EventID)
	b = appendMember(b, "endpoint_id", a.EndpointID)
	if a.Tenant != "" {
		b = appendMember(b, "tenant", a.Tenant)
	}
	b = appendMember(b, "event_type", a.EventType)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(a.Attempt), 10)
	b = appendMember(b, "tier", a.Tier)
	b = appendMember(b, "outcome", string(a.Outcome))
	if a.Skipped {
		b = append(b, `,"skipped":true`...)
	}
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(a.StatusCode), 10)
	b = appendMember(b, "error_class", string(a.ErrorClass))
	if a.Error != "" {
		b = appendMember(b, "error", a.Error)
	}
	b = append(b, `,"latency_ms":`...)
	var err error
	if b, err = appendJSONFloat(b, a.LatencyMS); err != nil {
		return nil, err
	}
	b = append(b, `,"request_bytes":`...)
	b = strconv.AppendInt(b, int64(a.RequestBytes), 10)
	b = append(b, `,"response_bytes":`...)
	b = strconv.AppendInt(b, int64(a.ResponseBytes), 10)
	if a.NextTier != "" {
		b = appendMember(b, "next_tier", a.NextTier)
	}
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"started_at", a.StartedAt}, {"finished_at", a.FinishedAt}, {"first_attempt_at", a.FirstAttempt}} {
		b = append(b, ',', '"')
		b = append(b, t.name...)
		b = append(b, '"', ':', '"')
		// AppendText is MarshalJSON without the quotes: RFC 3339 with
		// nanoseconds, and its errors.
		if b, err = t.at.AppendText(b); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// DecodeAttempt parses an attempts-topic record value.
func DecodeAttempt(value []byte) (Attempt, error) {
	var a Attempt
	if err := json.Unmarshal(value, &a); err != nil {
		return Attempt{}, fmt.Errorf("decode attempt record: %w", err)
	}
	if a.V < 1 || a.V > AttemptVersion {
		return Attempt{}, fmt.Errorf("decode attempt record: unsupported version %d", a.V)
	}
	return a, nil
}
