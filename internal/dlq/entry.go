package dlq

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
)

// Headers that mark a record as replayed from the DLQ. They are not retry
// state, so the pipeline carries them through the tiers and back into the
// DLQ should the replayed pair fail again.
const (
	HeaderReplayID       = "hookline-replay-id"
	HeaderReplayOperator = "hookline-replay-operator"
	// HeaderReplayAt is the time of the replay in unix milliseconds, like
	// the retry state's times.
	HeaderReplayAt = "hookline-replay-at"
	// HeaderReplaySource is the DLQ record replayed: <topic>/<partition>/<offset>.
	HeaderReplaySource = "hookline-replay-source"
)

var replayHeaders = map[string]bool{
	HeaderReplayID: true, HeaderReplayOperator: true, HeaderReplayAt: true, HeaderReplaySource: true,
}

// Entry is one DLQ record: a dead-lettered (event, endpoint) pair, or a
// record that could not be read at all.
type Entry struct {
	Partition int32
	Offset    int64
	// Timestamp is the record's timestamp: when it was written to the DLQ.
	Timestamp time.Time
	Key       []byte
	// Value is the event envelope as its producer wrote it, except for a
	// malformed record, whose bytes are kept as they were.
	Value   []byte
	Headers []kgo.RecordHeader

	// State is the pair's retry state from the headers. StateErr is set
	// when a header could not be read.
	State    processors.RetryState
	StateErr error

	// EventID, EventType, Tenant and EventEndpoint come from the envelope.
	// EnvelopeErr is set when the value is not one.
	EventID       string
	EventType     string
	Tenant        string
	EventEndpoint string
	EnvelopeErr   error

	// ReplayID is set when the pair was dead-lettered again after a replay.
	ReplayID string
}

// NewEntry decodes a DLQ record. It never fails: what cannot be read is
// reported in StateErr and EnvelopeErr, so a bad record can still be listed
// and shown.
func NewEntry(r *kgo.Record) *Entry {
	e := &Entry{
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   r.Headers,
	}
	e.State, e.StateErr = processors.ParseRetryState(r.Headers)
	for _, h := range r.Headers {
		if h.Key == HeaderReplayID {
			e.ReplayID = string(h.Value)
		}
	}
	// Only the addressing fields: the payload is never needed to list or
	// filter, and skipping it keeps a scan cheap.
	var ev struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		EndpointID string `json:"endpoint_id"`
		Tenant     string `json:"tenant"`
	}
	switch err := json.Unmarshal(r.Value, &ev); {
	case err != nil:
		e.EnvelopeErr = fmt.Errorf("value is not an envelope JSON object: %w", err)
	case ev.ID == "":
		e.EnvelopeErr = errors.New("envelope has no id")
	}
	e.EventID, e.EventType, e.Tenant, e.EventEndpoint = ev.ID, ev.Type, ev.Tenant, ev.EndpointID
	return e
}

// Endpoint is the endpoint of the pair: the retry state's, or for a record
// dead-lettered before it had one, the envelope's.
func (e *Entry) Endpoint() string {
	if e.State.EndpointID != "" {
		return e.State.EndpointID
	}
	return e.EventEndpoint
}

// DeadLetteredAt is when the pair entered the DLQ.
func (e *Entry) DeadLetteredAt() time.Time {
	if !e.State.Entered.IsZero() {
		return e.State.Entered
	}
	return e.Timestamp
}

// Ref is the entry's position as `dlq show` accepts it: partition:offset.
func (e *Entry) Ref() string {
	return strconv.FormatInt(int64(e.Partition), 10) + ":" + strconv.FormatInt(e.Offset, 10)
}

// Summary is the one-line view of an entry, as `dlq list --json` prints it.
type Summary struct {
	EventID        string    `json:"event_id"`
	Endpoint       string    `json:"endpoint"`
	Tenant         string    `json:"tenant,omitempty"`
	Type           string    `json:"type"`
	Attempts       int       `json:"attempts"`
	FirstAttempt   time.Time `json:"first_attempt_at,omitzero"`
	LastAttempt    time.Time `json:"last_attempt_at,omitzero"`
	LastStatus     int       `json:"last_status"`
	ErrorClass     string    `json:"error_class"`
	Reason         string    `json:"reason,omitempty"`
	Partition      int32     `json:"partition"`
	Offset         int64     `json:"offset"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	ReplayID       string    `json:"replay_id,omitempty"`
	Malformed      string    `json:"malformed,omitempty"`
}

// Summary returns the entry's summary; tenant is the pair's tenant (see
// Client.Tenant).
func (e *Entry) Summary(tenant string) Summary {
	s := Summary{
		EventID:        e.EventID,
		Endpoint:       e.Endpoint(),
		Tenant:         tenant,
		Type:           e.EventType,
		Attempts:       e.State.Attempts,
		FirstAttempt:   e.State.FirstAttempt,
		LastAttempt:    e.State.Entered,
		LastStatus:     e.State.LastStatus,
		ErrorClass:     string(e.State.LastClass),
		Reason:         e.State.DLQReason,
		Partition:      e.Partition,
		Offset:         e.Offset,
		DeadLetteredAt: e.DeadLetteredAt(),
		ReplayID:       e.ReplayID,
	}
	if e.EnvelopeErr != nil {
		s.Malformed = e.EnvelopeErr.Error()
	}
	return s
}
