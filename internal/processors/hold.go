package processors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HoldVersion is the version of the holds topic's values.
const HoldVersion = 1

// Hold is the durable state of one held pair (endpoint, ordering key) of a
// park partition: the parked event that failed and what its next attempt
// needs.
type Hold struct {
	V          int    `json:"v"`
	EndpointID string `json:"endpoint"`
	EventID    string `json:"event_id"`
	// ParkOffset is the offset of the held event in the park partition.
	ParkOffset int64 `json:"park_offset"`
	// Since is when the key was first held by this event.
	Since        time.Time `json:"since"`
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt"`
	// Due is when the next attempt may be made; Tier the retry tier whose
	// delay it waits, as a tier record would.
	Due       time.Time  `json:"due"`
	Tier      string     `json:"tier"`
	LastClass ErrorClass `json:"last_class,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// State is "" while the event is retried; HoldDead once it is
	// dead-lettered by an endpoint with on_dead_letter hold, until an
	// operator's HoldReplay or HoldSkip (written by hookline dlq replay or
	// skip) releases it.
	State string `json:"state,omitempty"`
	// By and At say who released a dead hold, and when.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
}

// StateName is the hold's State as operators read it: "retrying" for "".
func (h Hold) StateName() string {
	if h.State == "" {
		return "retrying"
	}
	return h.State
}

// States of a Hold.
const (
	HoldDead   = "dead"
	HoldReplay = "replay"
	HoldSkip   = "skip"
)

// HeaderHeldAt is set on the DLQ record of an event that holds its key
// after it was dead-lettered (on_dead_letter hold): its park offset. A
// replay or a skip of that record releases the key instead of sending it
// anew (see HoldCommand).
const HeaderHeldAt = "hookline-held-park-offset"

// HoldCommand is the holds record that releases a dead hold: state is
// HoldReplay (attempt the event again, in its key's place) or HoldSkip
// (release the key without it). The strict stage takes it from the holds
// topic.
func HoldCommand(topic string, partition int32, endpointID string, orderingKey []byte, eventID string, parkOffset int64, state, by string, at time.Time) (*kgo.Record, error) {
	v, err := json.Marshal(Hold{V: HoldVersion, EndpointID: endpointID, EventID: eventID, ParkOffset: parkOffset, State: state, By: by, At: at})
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Partition: partition, Key: HoldKey(endpointID, orderingKey), Value: v}, nil
}

// HoldKey is the key of a held pair in the holds topic, and the lane key
// the runner schedules it under.
func HoldKey(endpointID string, orderingKey []byte) []byte {
	k := make([]byte, 0, len(endpointID)+1+len(orderingKey))
	return append(append(append(k, endpointID...), 0), orderingKey...)
}

// SplitHoldKey is the inverse of HoldKey.
func SplitHoldKey(k []byte) (endpointID string, orderingKey []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// DecodeHold reads a holds topic value.
func DecodeHold(v []byte) (Hold, error) {
	var h Hold
	if err := json.Unmarshal(v, &h); err != nil {
		return Hold{}, fmt.Errorf("decode hold: %w", err)
	}
	if h.V < 1 || h.V > HoldVersion {
		return Hold{}, fmt.Errorf("decode hold: unsupported version %d", h.V)
	}
	return h, nil
}
