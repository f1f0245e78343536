package envelope

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func benchEvent() Event {
	return Event{
		V: Version, ID: "evt_0123456789", Type: "order.created", EndpointID: "ep_bench", OrderingKey: "key-17",
		Payload:   json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":"benchmark event"}`),
		CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
	}
}

// BenchmarkDecode measures reading and validating one events-topic value,
// which every stage does for every record: the bench's small payload, and
// one of 64 KiB.
func BenchmarkDecode(b *testing.B) {
	big := benchEvent()
	big.Payload = json.RawMessage(`{"blob":"` + strings.Repeat("x", 64<<10) + `"}`)
	for _, tc := range []struct {
		name string
		e    Event
	}{{"small", benchEvent()}, {"64KiB", big}} {
		b.Run(tc.name, func(b *testing.B) {
			v, err := Encode(tc.e)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(v)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode measures writing one events-topic value, as ingest does.
func BenchmarkEncode(b *testing.B) {
	e := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}
