package processors

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/envelope"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDeliveryLanesSplitPerEndpoint(t *testing.T) {
	dt := newDeliveryTest(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		dt.endpoint(id, status(200))
		ep := dt.reg[id]
		ep.Tenant = "acme"
		dt.reg[id] = ep
	}
	c := dt.reg["c"]
	c.EventTypes = []string{"invoice.*"}
	dt.reg["c"] = c
	d := dt.reg["d"]
	d.Enabled = false
	dt.reg["d"] = d

	ev := func(e envelope.Event) *kgo.Record {
		e.Payload = json.RawMessage(`{}`)
		return eventRecord(t, e)
	}
	tier := tierRecord(ev(envelope.Event{ID: "evt_1", Type: "t", EndpointID: "b"}), 1, 7, RetryState{Attempts: 1, EndpointID: "b", Tier: testTiers[1].Name})
	for _, tc := range []struct {
		name  string
		stage int
		r     *kgo.Record
		want  []string
	}{
		{"an event to one endpoint", -1, ev(envelope.Event{ID: "e1", Type: "order.created", EndpointID: "b"}), []string{"b"}},
		{"a tenant event: one lane per subscriber", -1, ev(envelope.Event{ID: "e2", Type: "order.created", Tenant: "acme"}), []string{"a", "b"}},
		{"a tenant without subscribers is not split", -1, ev(envelope.Event{ID: "e3", Type: "order.created", Tenant: "nobody"}), nil},
		{"a malformed record is not split", -1, &kgo.Record{Topic: "events", Value: []byte(`{"tenant":"acme"`)}, nil},
		{"a tier record: its endpoint", 1, tier, []string{"b"}},
		{"a tier record without endpoint is not split", 1, &kgo.Record{Topic: testTiers[1].Topic, Value: tier.Value}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dt.delivery(tc.stage, nil).Lanes(tc.r); !slices.Equal(got, tc.want) {
				t.Fatalf("Lanes = %v, want %v", got, tc.want)
			}
		})
	}
}

type laneCtxKey struct{}

// A tenant event processed for one lane is delivered to that endpoint only,
// and not at all to one that stopped subscribing since it was split.
func TestDeliveryTenantLaneDeliversToItsEndpointOnly(t *testing.T) {
	dt := newDeliveryTest(t)
	rcs := map[string]*receiver{}
	for _, id := range []string{"a", "b", "c"} {
		rcs[id] = dt.endpoint(id, status(200))
		ep := dt.reg[id]
		ep.Tenant = "acme"
		dt.reg[id] = ep
	}
	d := dt.delivery(-1, func(c *DeliveryConfig) {
		c.Lane = func(ctx context.Context) string { l, _ := ctx.Value(laneCtxKey{}).(string); return l }
	})
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", Tenant: "acme", Payload: json.RawMessage(`{}`)})
	if lanes := d.Lanes(r); !slices.Equal(lanes, []string{"a", "b", "c"}) {
		t.Fatalf("lanes %v", lanes)
	}
	c := dt.reg["c"]
	c.Enabled = false
	dt.reg["c"] = c

	for _, lane := range []string{"b", "c"} {
		recs, err := d.Process(context.WithValue(context.Background(), laneCtxKey{}, lane), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rec := range recs {
			a, err := DecodeAttempt(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, a.EndpointID)
		}
		want := map[string][]string{"b": {"b"}, "c": nil}[lane]
		if !slices.Equal(ids, want) {
			t.Fatalf("lane %s: attempts for %v, want %v", lane, ids, want)
		}
	}
	for id, n := range map[string]int{"a": 0, "b": 1, "c": 0} {
		if got := len(rcs[id].requests()); got != n {
			t.Errorf("endpoint %s got %d requests, want %d", id, got, n)
		}
	}
}

// The envelope Lanes decoded is what Process delivers: the payload reaches
// the endpoint byte for byte, also when the record is processed again.
func TestDeliveryOfASplitRecordKeepsThePayloadBytes(t *testing.T) {
	dt := newDeliveryTest(t)
	rc := dt.endpoint("a", status(200))
	payload := `{ "html": "<b>&amp;</b>", "sep": "` + "\u2028" + `", "esc": "\u00e9\/",  "n": 1.0e0 }`
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(payload)})
	d := dt.delivery(-1, nil)
	if lanes := d.Lanes(r); !slices.Equal(lanes, []string{"a"}) {
		t.Fatalf("lanes %v, want [a]", lanes)
	}
	for range 2 {
		process(t, d, r).one(t, "")
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, req := range reqs {
		var body struct{ Data json.RawMessage }
		if err := json.Unmarshal(req.body, &body); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(req.body), `"data":`+payload+`}`) || string(body.Data) != payload {
			t.Errorf("request %d: body %s, want data %s byte for byte", i, req.body, payload)
		}
	}
}
