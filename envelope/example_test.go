package envelope_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookline/hookline/envelope"
)

// A producer that writes to Kafka directly builds the events-topic record
// with Record and produces it with any client (kgo.Client.ProduceSync, for
// one); hookline decodes it with Decode. The payload travels byte for byte.
func Example() {
	ev := envelope.Event{
		ID:          "evt-1",
		Type:        "invoice.paid",
		EndpointID:  "ep-billing",
		OrderingKey: "invoice-42",
		Payload:     json.RawMessage(`{"invoice":"42","amount":"10.00 <EUR>"}`),
		CreatedAt:   time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
	}
	rec, err := envelope.Record("hookline.events", ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("topic %s, key %s, header %s=%s\n", rec.Topic, rec.Key, rec.Headers[0].Key, rec.Headers[0].Value)
	fmt.Printf("value %s\n", rec.Value)

	got, err := envelope.Decode(rec.Value)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("decoded %s %s for %s: %s\n", got.ID, got.Type, got.EndpointID, got.Payload)

	_, err = envelope.Decode([]byte(`{"v":1,"id":"evt-2","type":"invoice.paid","payload":{}}`))
	fmt.Println(err)
	// Output:
	// topic hookline.events, key invoice-42, header hookline-envelope=1
	// value {"v":1,"id":"evt-1","type":"invoice.paid","endpoint_id":"ep-billing","ordering_key":"invoice-42","created_at":"2026-12-01T09:30:00Z","payload":{"invoice":"42","amount":"10.00 <EUR>"}}
	// decoded evt-1 invoice.paid for ep-billing: {"invoice":"42","amount":"10.00 <EUR>"}
	// malformed event record: endpoint_id: one of endpoint_id or tenant is required
}
