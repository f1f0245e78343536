// Package envelope defines the versioned record format of the events topic:
// what a producer writes, whether through the ingest API or straight to Kafka
// with any client. docs/envelope.md is the reference for non-Go producers.
//
// A record's value is a JSON object carrying "v" (the envelope version) and the
// event; its key is the ordering key, so one key always lands on one partition.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookline/hookline/internal/rawjson"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is the envelope version this package writes and the newest it reads.
const Version = 1

// HeaderVersion names the record header that repeats the envelope version, so
// a consumer can route a record without parsing its value.
const HeaderVersion = "hookline-envelope"

// HeaderIdempotencyKey carries the ingest Idempotency-Key of an event, so the
// duplicate index can be rebuilt from the events topic after a restart.
const HeaderIdempotencyKey = "hookline-idempotency-key"

// Limits on the fields of an event.
const (
	MaxIDLen   = 256
	MaxTypeLen = 256
)

// Event is one event as producers hand it to hookline. Exactly one of
// EndpointID and Tenant addresses it: an endpoint directly, or every enabled
// endpoint of a tenant whose event-type filter matches.
type Event struct {
	V           int             `json:"v"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	EndpointID  string          `json:"endpoint_id,omitempty"`
	Tenant      string          `json:"tenant,omitempty"`
	OrderingKey string          `json:"ordering_key,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	CreatedAt   time.Time       `json:"created_at"`
}

// FieldError is a validation error that names the offending field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ErrMalformed wraps every decoding failure, so callers can tell bad input
// from other errors with errors.Is.
var ErrMalformed = errors.New("malformed event record")

// Key is the record key of the event: its ordering key, by default the
// endpoint id, or the tenant for a fan-out event.
func (e Event) Key() string {
	switch {
	case e.OrderingKey != "":
		return e.OrderingKey
	case e.EndpointID != "":
		return e.EndpointID
	default:
		return e.Tenant
	}
}

// CheckPrintable refuses control characters (C0, DEL, C1) in the value of
// field: names end up in logs, metrics and the CLI's tables, where they
// could move the cursor, recolour the terminal or forge a log line. The
// error is a *FieldError.
func CheckPrintable(field, v string) error {
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return &FieldError{field, fmt.Sprintf("must not contain control characters (%U at byte %d)", r, i)}
	}
	return nil
}

// Validate checks the event as a producer wrote it. The error is a
// *FieldError naming the field.
func (e Event) Validate() error { return e.validate(true) }

// validate is Validate; checkPayload false skips checking that the payload
// is valid JSON, for an event json.Unmarshal just read, which checked the
// whole value (payload included) before it decoded any of it.
func (e Event) validate(checkPayload bool) error {
	for _, f := range []struct{ name, v string }{
		{"id", e.ID}, {"type", e.Type}, {"endpoint_id", e.EndpointID}, {"tenant", e.Tenant}, {"ordering_key", e.OrderingKey},
	} {
		if err := CheckPrintable(f.name, f.v); err != nil {
			return err
		}
	}
	switch {
	case e.V != 0 && e.V > Version:
		return &FieldError{"v", fmt.Sprintf("envelope version %d is newer than this hookline reads (%d)", e.V, Version)}
	case e.ID == "":
		return &FieldError{"id", "is required"}
	case len(e.ID) > MaxIDLen:
		return &FieldError{"id", fmt.Sprintf("is longer than %d bytes", MaxIDLen)}
	case strings.TrimSpace(e.Type) == "":
		return &FieldError{"type", "is required"}
	case len(e.Type) > MaxTypeLen:
		return &FieldError{"type", fmt.Sprintf("is longer than %d bytes", MaxTypeLen)}
	case e.EndpointID == "" && e.Tenant == "":
		return &FieldError{"endpoint_id", "one of endpoint_id or tenant is required"}
	case e.EndpointID != "" && e.Tenant != "":
		return &FieldError{"endpoint_id", "give endpoint_id or tenant, not both"}
	case len(e.Payload) == 0:
		return &FieldError{"payload", "is required"}
	case checkPayload && !json.Valid(e.Payload):
		return &FieldError{"payload", "is not valid JSON"}
	}
	return nil
}

// Record builds the Kafka record for the events topic. It validates the event
// and fills in the version and, when unset, the creation time.
func Record(topic string, e Event) (*kgo.Record, error) {
	if e.V == 0 {
		e.V = Version
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now().UTC()
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	value, err := Encode(e)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic:   topic,
		Key:     []byte(e.Key()),
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: HeaderVersion, Value: []byte(fmt.Sprint(e.V))}},
	}, nil
}

// Decode parses and validates an events-topic record value. Every error wraps
// ErrMalformed and says what is wrong.
func Decode(value []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(value, &e); err != nil {
		return Event{}, fmt.Errorf("%w: value is not an envelope JSON object: %v", ErrMalformed, err)
	}
	if e.V == 0 {
		return Event{}, fmt.Errorf("%w: v: envelope version is missing", ErrMalformed)
	}
	// Unmarshal checked the payload; a large one is not scanned twice.
	if err := e.validate(false); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

// head is an Event without its payload, which Encode splices in as it is.
type head struct {
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	EndpointID  string    `json:"endpoint_id,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	OrderingKey string    `json:"ordering_key,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Encode is the inverse of Decode. The payload is written byte for byte as
// the producer gave it (only JSON whitespace around the value is dropped);
// see docs/envelope.md.
func Encode(e Event) ([]byte, error) {
	if e.V == 0 {
		e.V = Version
	}
	h := head{V: e.V, ID: e.ID, Type: e.Type, EndpointID: e.EndpointID, Tenant: e.Tenant, OrderingKey: e.OrderingKey, CreatedAt: e.CreatedAt}
	v, err := rawjson.Object(h, "payload", e.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return v, nil
}
