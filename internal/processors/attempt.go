package processors

import (
	"encoding/json"
	"fmt"
	"time"

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
	return fmt.Sprintf("%s/%d/%d/%s", topic, partition, offset, endpointID)
}

// Record encodes the attempt for the attempts topic, keyed by endpoint id so
// one endpoint's attempts stay in order.
func (a Attempt) Record(topic string) (*kgo.Record, error) {
	a.V = AttemptVersion
	v, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode attempt %s: %w", a.AttemptID, err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(a.EndpointID), Value: v}, nil
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
