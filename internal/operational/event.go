package operational

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is the version of the event JSON. A reader accepts the versions
// it knows and skips the rest; fields are only ever added within a version.
const Version = 1

// Type names an operational event.
type Type string

// The operational event types.
const (
	// EndpointDisabled: an endpoint was disabled by hookline (it answered
	// 410 Gone, or failed for its disable_after without a success).
	EndpointDisabled Type = "endpoint.disabled"
	// EndpointFailing: an endpoint's circuit breaker opened, or it failed
	// failing_after times in a row.
	EndpointFailing Type = "endpoint.failing"
	// EndpointRecovered: an endpoint that was failing answered 2xx.
	EndpointRecovered Type = "endpoint.recovered"
	// AttemptExhausted: a pair (event, endpoint) was dead-lettered.
	AttemptExhausted Type = "message.attempt.exhausted"
	// ReplayFinished: a DLQ replay ended.
	ReplayFinished Type = "dlq.replay.finished"
)

// Types lists every type, in the order docs/operational-events.md
// documents them; a test holds the docs to it.
var Types = []Type{EndpointDisabled, EndpointFailing, EndpointRecovered, AttemptExhausted, ReplayFinished}

// Causes of endpoint.failing and endpoint.disabled.
const (
	CauseBreakerOpen         = "breaker_open"
	CauseConsecutiveFailures = "consecutive_failures"
	CauseGone                = "gone"
	CauseDisableAfter        = "disable_after"
)

// Event is one operational event, as written to the operational topic and
// POSTed to the operator webhook.
type Event struct {
	Version int `json:"version"`
	// ID is stable for one occurrence: an event written again (a stage's
	// transaction retried) has the same id, which is the webhook-id of its
	// POST, so operators can deduplicate.
	ID        string    `json:"id"`
	Type      Type      `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is what an event is about; each type sets the fields
// docs/operational-events.md lists for it.
type Data struct {
	EndpointID string `json:"endpoint_id,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	// Cause is one of the Cause constants (endpoint.failing, .disabled).
	Cause string `json:"cause,omitempty"`
	// Reason says in words why: the disable reason, the DLQ reason.
	Reason              string     `json:"reason,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures,omitempty"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`

	// message.attempt.exhausted
	EventID    string `json:"event_id,omitempty"`
	EventType  string `json:"event_type,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	LastStatus int    `json:"last_status,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`

	// dlq.replay.finished
	ReplayID string `json:"replay_id,omitempty"`
	// Outcome is completed, interrupted or failed.
	Outcome  string `json:"outcome,omitempty"`
	Replayed int64  `json:"replayed,omitempty"`
	Skipped  int64  `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ID derives an event id from what identifies its occurrence (its type and,
// say, the attempt that caused it), so that writing it again gives the same id.
func ID(t Type, parts ...string) string {
	h := sha256.Sum256([]byte(string(t) + "\x00" + strings.Join(parts, "\x00")))
	return "op_" + hex.EncodeToString(h[:13])
}

// New is an event of type t at ts with the id ID(t, idParts...).
func New(t Type, ts time.Time, data Data, idParts ...string) Event {
	return Event{Version: Version, ID: ID(t, idParts...), Type: t, Timestamp: ts.UTC(), Data: data}
}

// Record encodes the event for the operational topic, keyed by its endpoint
// (or replay) so one endpoint's events stay in order. The partition is
// left to the caller: a stage writes it in the partition of the record
// that caused it.
func (e Event) Record(topic string) (*kgo.Record, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode operational event %s: %w", e.Type, err)
	}
	key := e.Data.EndpointID
	if key == "" {
		key = e.Data.ReplayID
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: v}, nil
}

// ErrVersion is wrapped by Decode's error for an event of a version this
// reader does not know.
var ErrVersion = errors.New("unknown operational event version")

// Decode reads an event written by Record.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decode operational event: %w", err)
	}
	if e.Version != Version {
		return Event{}, fmt.Errorf("operational event version %d: %w", e.Version, ErrVersion)
	}
	return e, nil
}
