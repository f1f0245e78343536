package processors

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

var benchPayload = json.RawMessage(`{"order":12345,"amount_cents":4200,"currency":"EUR","note":"benchmark event"}`)

func benchAttempt() Attempt {
	return Attempt{
		AttemptID: "hookline.events/3/1234567/ep_bench", EventID: "evt_0123456789", EndpointID: "ep_bench",
		EventType: "order.created", Attempt: 1, Tier: StageEvents, Outcome: OutcomeDelivered,
		StatusCode: 204, ErrorClass: ClassNone, LatencyMS: 1.234567, RequestBytes: 164, ResponseBytes: 0,
		StartedAt: t0, FinishedAt: t0.Add(1234567 * time.Nanosecond), FirstAttempt: t0,
	}
}

// BenchmarkAttemptRecord measures encoding one attempt record, made for
// every attempt.
func BenchmarkAttemptRecord(b *testing.B) {
	a := benchAttempt()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Record(attemptsTopic); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhookBody measures building the request body of one event.
func BenchmarkWebhookBody(b *testing.B) {
	ev := envelope.Event{ID: "evt_0123456789", Type: "order.created", EndpointID: "ep_bench", Payload: benchPayload, CreatedAt: t0}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WebhookBody(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliveryProcess measures one delivery through the delivery
// stage as the events stage makes it: split into lanes, decode, sign, POST
// to a local receiver that answers 204, encode the attempt record. The
// HTTP exchange (client and server in this process) dominates; the
// allocations per op are what hookline's own code adds to it.
func BenchmarkDeliveryProcess(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	secret, err := signature.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	reg := registry{"a": endpoints.Endpoint{ID: "a", URL: srv.URL, Secrets: []string{secret}, Enabled: true, TimeoutMS: 5000}}
	sender := NewSender(SenderOptions{Destinations: localOnly})
	defer sender.Close()
	d, err := NewDelivery(DeliveryConfig{
		Stage: StageEvents, TierIndex: -1, Tiers: testTiers, DLQTopic: dlqTopic, AttemptsTopic: attemptsTopic,
		Jitter: DefaultJitter, Endpoints: reg, Sender: sender,
	})
	if err != nil {
		b.Fatal(err)
	}
	r, err := envelope.Record("hookline.events", envelope.Event{ID: "evt_0123456789", Type: "order.created", EndpointID: "a", OrderingKey: "key-17", Payload: benchPayload, CreatedAt: t0})
	if err != nil {
		b.Fatal(err)
	}
	r.Partition, r.Offset = 3, 1234567
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		lanes := d.Lanes(r)
		out, err := d.Process(ctx, r, nil)
		if err != nil || len(out) != 1 || len(lanes) != 1 {
			b.Fatalf("Process = %d records, %v; lanes %v", len(out), err, lanes)
		}
	}
}

// BenchmarkDecodeAttempt measures reading one attempt record, as the
// ClickHouse sink does.
func BenchmarkDecodeAttempt(b *testing.B) {
	r, err := benchAttempt().Record(attemptsTopic)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAttempt(r.Value); err != nil {
			b.Fatal(err)
		}
	}
}
