package envelope

import (
	"bytes"
	"errors"
	"testing"
)

// Decode never panics; what it accepts is valid and survives Encode and
// Decode again unchanged, its payload byte for byte.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"evt_1","type":"order.created","endpoint_id":"ep_1","payload":{"a":1},"created_at":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"id":"evt_2","type":"t","tenant":"acme","ordering_key":"k","payload":[1,2,3],"created_at":"2026-01-01T00:00:00.123456789Z"}`,
		`{"v":2,"id":"x","type":"t","tenant":"a","payload":1}`,
		`{"v":1,"id":"x","type":"t","tenant":"a","endpoint_id":"b","payload":null}`,
		`{"v":1}`, `[]`, `null`, `{"payload":"\ud800"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, err := Decode(value)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid event: %v", err)
		}
		enc, err := Encode(ev)
		if err != nil {
			t.Fatalf("Encode of a decoded event: %v", err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))): %v", err)
		}
		if again.ID != ev.ID || again.Type != ev.Type || again.Tenant != ev.Tenant || again.EndpointID != ev.EndpointID ||
			again.OrderingKey != ev.OrderingKey || !again.CreatedAt.Equal(ev.CreatedAt) || again.Key() != ev.Key() {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
		if !bytes.Equal(again.Payload, ev.Payload) {
			t.Fatalf("round trip changed the payload bytes: %q -> %q", ev.Payload, again.Payload)
		}
	})
}
