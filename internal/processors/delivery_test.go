package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
	"github.com/twmb/franz-go/pkg/kgo"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var testTiers = []TierTarget{
	{Name: "retry.30s", Topic: "hookline.retry.30s", Delay: 30 * time.Second},
	{Name: "retry.2m", Topic: "hookline.retry.2m", Delay: 2 * time.Minute},
	{Name: "retry.10m", Topic: "hookline.retry.10m", Delay: 10 * time.Minute},
	{Name: "retry.1h", Topic: "hookline.retry.1h", Delay: time.Hour},
}

const (
	dlqTopic      = "hookline.dlq"
	attemptsTopic = "hookline.attempts"
)

// registry is an in-memory endpoints.Lookup.
type registry map[string]endpoints.Endpoint

func (r registry) Get(id string) (endpoints.Endpoint, bool) { ep, ok := r[id]; return ep, ok }

func (r registry) ByTenant(tenant, eventType string) []endpoints.Endpoint {
	var out []endpoints.Endpoint
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} { // stable order
		if ep, ok := r[id]; ok && ep.Enabled && ep.Tenant == tenant && ep.Accepts(eventType) {
			out = append(out, ep)
		}
	}
	return out
}

type deliveryTest struct {
	t      *testing.T
	secret string
	reg    registry
}

func newDeliveryTest(t *testing.T) *deliveryTest {
	return &deliveryTest{t: t, secret: newSecret(t), reg: registry{}}
}

func (dt *deliveryTest) endpoint(id string, handle func(http.ResponseWriter, *http.Request)) *receiver {
	rc := newReceiver(dt.t, handle)
	dt.reg[id] = endpoints.Endpoint{ID: id, URL: rc.URL, Secrets: []string{dt.secret}, Enabled: true, TimeoutMS: 5000}
	return rc
}

func (dt *deliveryTest) delivery(stage int, mutate func(*DeliveryConfig)) *Delivery {
	dt.t.Helper()
	name := StageEvents
	if stage >= 0 {
		name = testTiers[stage].Name
	}
	cfg := DeliveryConfig{
		Stage: name, TierIndex: stage, Tiers: testTiers, DLQTopic: dlqTopic, AttemptsTopic: attemptsTopic,
		Jitter: DefaultJitter, Endpoints: dt.reg, Sender: NewSender(SenderOptions{Destinations: localOnly}),
		Now:  func() time.Time { return t0 },
		Rand: func() float64 { return 0.5 },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := NewDelivery(cfg)
	if err != nil {
		dt.t.Fatal(err)
	}
	return d
}

func eventRecord(t *testing.T, ev envelope.Event) *kgo.Record {
	t.Helper()
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = t0.Add(-time.Second)
	}
	r, err := envelope.Record("events", ev)
	if err != nil {
		t.Fatal(err)
	}
	r.Partition, r.Offset = 3, 42
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: envelope.HeaderIdempotencyKey, Value: []byte("idem-" + ev.ID)})
	return r
}

// tierRecord is r as it sits in tier i with state.
func tierRecord(r *kgo.Record, i int, offset int64, state RetryState) *kgo.Record {
	return &kgo.Record{
		Topic: testTiers[i].Topic, Partition: r.Partition, Offset: offset, Key: r.Key, Value: r.Value,
		Headers: append(CarryHeaders(r.Headers), state.Headers()...),
	}
}

// routed splits a Process result into successor records and attempts.
type routed struct {
	next     []*kgo.Record
	attempts []Attempt
}

func process(t *testing.T, d *Delivery, r *kgo.Record) routed {
	t.Helper()
	return processHandedOff(t, d, r, nil)
}

// processHandedOff is process of a record whose successors handedOff are
// already committed.
func processHandedOff(t *testing.T, d *Delivery, r *kgo.Record, handedOff []*kgo.Record) routed {
	t.Helper()
	recs, err := d.Process(context.Background(), r, handedOff)
	if err != nil {
		t.Fatalf("Process = %v", err)
	}
	var out routed
	for _, rec := range recs {
		if rec.Partition != r.Partition {
			t.Errorf("record to %s on partition %d, want %d", rec.Topic, rec.Partition, r.Partition)
		}
		if rec.Topic == attemptsTopic {
			a, err := DecodeAttempt(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			out.attempts = append(out.attempts, a)
			continue
		}
		if string(rec.Key) != string(r.Key) || string(rec.Value) != string(r.Value) {
			t.Errorf("record to %s changed key or value", rec.Topic)
		}
		for _, k := range []string{envelope.HeaderVersion, envelope.HeaderIdempotencyKey} {
			if header(rec, k) != header(r, k) {
				t.Errorf("record to %s: header %s = %q, want %q", rec.Topic, k, header(rec, k), header(r, k))
			}
		}
		out.next = append(out.next, rec)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func stateOf(t *testing.T, r *kgo.Record) RetryState {
	t.Helper()
	s, err := ParseRetryState(r.Headers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// one expects exactly one successor (or none when topic is "") and one attempt.
func (o routed) one(t *testing.T, topic string) (*kgo.Record, Attempt) {
	t.Helper()
	if len(o.attempts) != 1 {
		t.Fatalf("%d attempt records, want 1", len(o.attempts))
	}
	if topic == "" {
		if len(o.next) != 0 {
			t.Fatalf("successor to %s, want none", o.next[0].Topic)
		}
		return nil, o.attempts[0]
	}
	if len(o.next) != 1 || o.next[0].Topic != topic {
		t.Fatalf("successors %v, want one to %s", topics(o.next), topic)
	}
	return o.next[0], o.attempts[0]
}

func topics(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Topic)
	}
	return out
}

func TestDeliveryDelivers(t *testing.T) {
	dt := newDeliveryTest(t)
	rc := dt.endpoint("a", status(200))
	d := dt.delivery(-1, nil)
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "order.created", EndpointID: "a", Payload: json.RawMessage(`{"n": 1}`)})

	_, a := process(t, d, r).one(t, "")
	if a.Outcome != OutcomeDelivered || a.StatusCode != 200 || a.Attempt != 1 || a.Tier != "events" || a.NextTier != "" {
		t.Fatalf("attempt %+v, want delivered first attempt from events", a)
	}
	if a.AttemptID != "events/3/42/a" || a.EventID != "evt_1" || a.EventType != "order.created" || !a.FirstAttempt.Equal(t0) {
		t.Fatalf("attempt %+v", a)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "evt_1", "type": "order.created", "timestamp": "2025-03-01T11:59:59Z", "data": map[string]any{"n": 1.0}}
	if fmt.Sprint(body) != fmt.Sprint(want) {
		t.Fatalf("body %v, want %v", body, want)
	}
	if err := signature.Verify([]string{dt.secret}, reqs[0].header, reqs[0].body, time.Minute, t0); err != nil {
		t.Fatalf("receiver cannot verify: %v", err)
	}
	if a.RequestBytes != len(reqs[0].body) {
		t.Errorf("RequestBytes %d, body %d", a.RequestBytes, len(reqs[0].body))
	}
}

func TestDeliveryRetryDueTime(t *testing.T) {
	tests := []struct {
		name       string
		u          float64
		retryAfter string
		status     int
		wantDue    time.Duration // after t0
		wantTier   int
	}{
		{"lowest jitter draw is never early", 0, "", 500, 24 * time.Second, 0},
		{"middle draw", 0.5, "", 500, 30 * time.Second, 0},
		{"highest draw", 0.99999, "", 500, 36 * time.Second, 0},
		{"Retry-After just beyond the next tier waits in the tier after", 0.5, "33", 429, 33 * time.Second, 1},
		{"Retry-After beyond the next tier waits in the first tier covering it", 0.5, "300", 429, 5 * time.Minute, 2},
		{"Retry-After equal to a tier's delay waits in that tier", 0.5, "120", 503, 2 * time.Minute, 1},
		{"Retry-After beyond the longest tier is capped at it", 0.5, "86400", 429, time.Hour, 3},
		{"shorter Retry-After does not pull due in", 0.5, "5", 503, 30 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dt := newDeliveryTest(t)
			dt.endpoint("a", func(w http.ResponseWriter, _ *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			})
			d := dt.delivery(-1, func(c *DeliveryConfig) { c.Rand = func() float64 { return tt.u } })
			r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})

			tier := testTiers[tt.wantTier]
			next, a := process(t, d, r).one(t, tier.Topic)
			s := stateOf(t, next)
			gotDue := s.Due.Sub(t0)
			if gotDue < tt.wantDue-time.Millisecond || gotDue > tt.wantDue {
				t.Fatalf("due t0+%v, want t0+%v", gotDue, tt.wantDue)
			}
			if gotDue < 24*time.Second {
				t.Fatalf("due t0+%v is before entered+delay*(1-jitter)", gotDue)
			}
			if due, ok := DueOf(next); !ok || !due.Equal(s.Due) {
				t.Fatalf("DueOf = %v, %v; state says %v", due, ok, s.Due)
			}
			want := RetryState{
				Attempts: 1, FirstAttempt: t0, Entered: t0, Due: s.Due, LastStatus: tt.status,
				LastError: fmt.Sprintf("HTTP %d %s", tt.status, http.StatusText(tt.status)), LastClass: a.ErrorClass,
				OriginTopic: "events", OriginPartition: 3, OriginOffset: 42, EndpointID: "a", Tier: tier.Name,
			}
			if s != want {
				t.Fatalf("retry state\n got %+v\nwant %+v", s, want)
			}
			if a.Outcome != OutcomeRetry || a.NextTier != tier.Name || a.StatusCode != tt.status || a.Attempt != 1 {
				t.Fatalf("attempt %+v", a)
			}
		})
	}
}

func TestDeliveryTierStage(t *testing.T) {
	first := t0.Add(-time.Hour)
	prior := RetryState{
		Attempts: 1, FirstAttempt: first, Entered: t0.Add(-30 * time.Second), Due: t0, LastStatus: 500,
		LastError: "HTTP 500 Internal Server Error", LastClass: ClassHTTP5xx,
		OriginTopic: "events", OriginPartition: 3, OriginOffset: 42, EndpointID: "a", Tier: "retry.30s",
	}
	t.Run("delivered from a tier", func(t *testing.T) {
		dt := newDeliveryTest(t)
		dt.endpoint("a", status(200))
		r := tierRecord(eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)}), 0, 7, prior)
		_, a := process(t, dt.delivery(0, nil), r).one(t, "")
		if a.Outcome != OutcomeDelivered || a.Attempt != 2 || a.Tier != "retry.30s" || !a.FirstAttempt.Equal(first) || a.AttemptID != "hookline.retry.30s/3/7/a" {
			t.Fatalf("attempt %+v", a)
		}
	})
	t.Run("middle tier moves on to the next", func(t *testing.T) {
		dt := newDeliveryTest(t)
		dt.endpoint("a", status(502))
		r := tierRecord(eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)}), 0, 7, prior)
		next, a := process(t, dt.delivery(0, nil), r).one(t, testTiers[1].Topic)
		s := stateOf(t, next)
		if s.Attempts != 2 || !s.FirstAttempt.Equal(first) || s.OriginTopic != "events" || s.OriginOffset != 42 || s.Tier != "retry.2m" || !s.Due.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("state %+v", s)
		}
		if a.Attempt != 2 || a.NextTier != "retry.2m" {
			t.Fatalf("attempt %+v", a)
		}
	})
	t.Run("last tier goes to the DLQ with its full context", func(t *testing.T) {
		dt := newDeliveryTest(t)
		dt.endpoint("a", status(503))
		last := prior
		last.Attempts, last.Tier = 4, "retry.1h"
		r := tierRecord(eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)}), 3, 9, last)
		next, a := process(t, dt.delivery(3, nil), r).one(t, dlqTopic)
		want := RetryState{
			Attempts: 5, FirstAttempt: first, Entered: t0, LastStatus: 503, LastError: "HTTP 503 Service Unavailable",
			LastClass: ClassHTTP5xx, OriginTopic: "events", OriginPartition: 3, OriginOffset: 42, EndpointID: "a",
			Tier: TierDLQ, DLQReason: "attempts exhausted after 5 attempts: HTTP 503 Service Unavailable",
		}
		if s := stateOf(t, next); s != want {
			t.Fatalf("DLQ state\n got %+v\nwant %+v", s, want)
		}
		if a.Outcome != OutcomeDeadLettered || a.NextTier != TierDLQ || a.Attempt != 5 {
			t.Fatalf("attempt %+v", a)
		}
	})
	t.Run("MaxAttempts cuts the tiers short", func(t *testing.T) {
		dt := newDeliveryTest(t)
		dt.endpoint("a", status(500))
		r := tierRecord(eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)}), 0, 7, prior)
		next, _ := process(t, dt.delivery(0, func(c *DeliveryConfig) { c.MaxAttempts = 2 }), r).one(t, dlqTopic)
		if s := stateOf(t, next); !strings.HasPrefix(s.DLQReason, "attempts exhausted after 2 attempts") {
			t.Fatalf("reason %q", s.DLQReason)
		}
	})
}

func TestDeliveryPermanentFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		disableErr error
		class      ErrorClass
		reason     string
		disabled   bool
	}{
		{"400 dead-letters at once", 400, nil, ClassHTTP4xx, "permanent failure: HTTP 400 Bad Request", false},
		{"403 dead-letters at once", 403, nil, ClassHTTP4xx, "permanent failure: HTTP 403 Forbidden", false},
		{"410 disables the endpoint", 410, nil, ClassHTTP410, "endpoint gone: HTTP 410 Gone, endpoint disabled", true},
		{"410 when disabling fails still dead-letters", 410, errors.New("registry unavailable"), ClassHTTP410, "endpoint gone: HTTP 410 Gone (disabling the endpoint failed)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dt := newDeliveryTest(t)
			rc := dt.endpoint("a", status(tt.status))
			var disabled []string
			d := dt.delivery(-1, func(c *DeliveryConfig) {
				c.Disable = func(_ context.Context, id, _ string) error {
					disabled = append(disabled, id)
					return tt.disableErr
				}
			})
			r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
			next, a := process(t, d, r).one(t, dlqTopic)
			s := stateOf(t, next)
			if s.DLQReason != tt.reason || s.LastClass != tt.class || s.LastStatus != tt.status || s.Attempts != 1 || s.Tier != TierDLQ {
				t.Fatalf("DLQ state %+v", s)
			}
			if a.Outcome != OutcomeDeadLettered || a.ErrorClass != tt.class {
				t.Fatalf("attempt %+v", a)
			}
			if got := len(rc.requests()); got != 1 {
				t.Fatalf("%d requests, want exactly 1", got)
			}
			if tt.disabled != (len(disabled) == 1 && disabled[0] == "a") {
				t.Fatalf("disabled %v, want disabled=%v", disabled, tt.disabled)
			}
		})
	}
}

func TestDeliveryMalformed(t *testing.T) {
	good := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
	tests := []struct {
		name   string
		stage  int
		r      *kgo.Record
		reason string
	}{
		{"not JSON", -1, &kgo.Record{Topic: "events", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("hello")}, "not an envelope JSON object"},
		{"no id", -1, &kgo.Record{Topic: "events", Partition: 1, Offset: 5, Value: []byte(`{"v":1,"type":"t","endpoint_id":"a","payload":{}}`)}, "id: is required"},
		{"no version", -1, &kgo.Record{Topic: "events", Partition: 1, Offset: 5, Value: []byte(`{"id":"e","type":"t","endpoint_id":"a","payload":{}}`)}, "envelope version is missing"},
		{"tier record with bad header", 0, &kgo.Record{Topic: testTiers[0].Topic, Partition: 1, Offset: 5, Value: good.Value,
			Headers: []kgo.RecordHeader{{Key: HeaderEndpoint, Value: []byte("a")}, {Key: HeaderAttempts, Value: []byte("many")}}}, HeaderAttempts},
		{"tier record without endpoint", 0, &kgo.Record{Topic: testTiers[0].Topic, Partition: 1, Offset: 5, Value: good.Value,
			Headers: RetryState{Attempts: 1}.Headers()}, "no hookline-endpoint header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dt := newDeliveryTest(t)
			rc := dt.endpoint("a", status(200))
			out := process(t, dt.delivery(tt.stage, nil), tt.r)
			if len(out.attempts) != 0 || len(out.next) != 1 || out.next[0].Topic != dlqTopic {
				t.Fatalf("got %v and %d attempts, want one DLQ record and no attempt", topics(out.next), len(out.attempts))
			}
			s := stateOf(t, out.next[0])
			if s.LastClass != ClassMalformed || s.Tier != TierDLQ || !strings.Contains(s.DLQReason, tt.reason) || !s.Entered.Equal(t0) {
				t.Fatalf("DLQ state %+v, want malformed with reason containing %q", s, tt.reason)
			}
			if s.OriginTopic != tt.r.Topic || s.OriginPartition != 1 || s.OriginOffset != 5 {
				t.Fatalf("origin %s/%d/%d", s.OriginTopic, s.OriginPartition, s.OriginOffset)
			}
			if n := len(rc.requests()); n != 0 {
				t.Fatalf("%d requests for a malformed record", n)
			}
		})
	}
}

func TestDeliveryEndpointUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		ep     *endpoints.Endpoint
		class  ErrorClass
		reason string
	}{
		{"missing", nil, ClassEndpointMissing, "endpoint a does not exist"},
		{"disabled", &endpoints.Endpoint{ID: "a", URL: "http://127.0.0.1:1", Enabled: false, DisabledReason: "HTTP 410"}, ClassEndpointDisabled, "endpoint a is disabled: HTTP 410"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dt := newDeliveryTest(t)
			if tt.ep != nil {
				dt.reg["a"] = *tt.ep
			}
			r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
			next, a := process(t, dt.delivery(-1, nil), r).one(t, dlqTopic)
			s := stateOf(t, next)
			if s.LastClass != tt.class || s.DLQReason != tt.reason || s.EndpointID != "a" || s.Attempts != 1 {
				t.Fatalf("DLQ state %+v", s)
			}
			if !a.Skipped || a.Outcome != OutcomeDeadLettered || a.ErrorClass != tt.class || a.StatusCode != 0 || a.NextTier != TierDLQ {
				t.Fatalf("attempt %+v, want skipped and dead-lettered", a)
			}
		})
	}
}

func TestDeliveryTenantFanOut(t *testing.T) {
	dt := newDeliveryTest(t)
	// The three subscribers answer only once all three requests have arrived:
	// a fan-out that sent them one by one would time out.
	var wg sync.WaitGroup
	wg.Add(3)
	arrived := make(chan struct{})
	go func() { wg.Wait(); close(arrived) }()
	barrier := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			wg.Done()
			select {
			case <-arrived:
				w.WriteHeader(code)
			case <-r.Context().Done():
			}
		}
	}
	subscribers := map[string]*receiver{
		"a": dt.endpoint("a", barrier(200)),
		"b": dt.endpoint("b", barrier(500)),
		"c": dt.endpoint("c", barrier(204)),
	}
	others := map[string]*receiver{
		"d": dt.endpoint("d", status(200)),
		"e": dt.endpoint("e", status(200)),
		"f": dt.endpoint("f", status(200)),
	}
	set := func(id string, f func(*endpoints.Endpoint)) {
		ep := dt.reg[id]
		f(&ep)
		dt.reg[id] = ep
	}
	for id := range dt.reg {
		set(id, func(ep *endpoints.Endpoint) { ep.Tenant = "acme" })
	}
	set("a", func(ep *endpoints.Endpoint) { ep.EventTypes = []string{"order.*"} })
	set("c", func(ep *endpoints.Endpoint) { ep.EventTypes = []string{"invoice.paid", "order.created"} })
	set("d", func(ep *endpoints.Endpoint) { ep.EventTypes = []string{"invoice.*"} })
	set("e", func(ep *endpoints.Endpoint) { ep.Enabled = false })
	set("f", func(ep *endpoints.Endpoint) { ep.Tenant = "globex" })

	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "order.created", Tenant: "acme", Payload: json.RawMessage(`{}`)})
	out := process(t, dt.delivery(-1, nil), r)

	outcomes := map[string]Outcome{}
	for _, a := range out.attempts {
		outcomes[a.EndpointID] = a.Outcome
		if a.AttemptID != "events/3/42/"+a.EndpointID || a.Tenant != "acme" {
			t.Errorf("attempt %+v", a)
		}
	}
	want := map[string]Outcome{"a": OutcomeDelivered, "b": OutcomeRetry, "c": OutcomeDelivered}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	if len(out.next) != 1 || out.next[0].Topic != testTiers[0].Topic || stateOf(t, out.next[0]).EndpointID != "b" {
		t.Fatalf("successors %v, want b's record in the first tier", topics(out.next))
	}
	for id, rc := range subscribers {
		reqs := rc.requests()
		if len(reqs) != 1 {
			t.Fatalf("subscriber %s got %d requests", id, len(reqs))
		}
		var body struct{ Tenant string }
		if err := json.Unmarshal(reqs[0].body, &body); err != nil || body.Tenant != "acme" {
			t.Errorf("subscriber %s body %s", id, reqs[0].body)
		}
	}
	for id, rc := range others {
		if n := len(rc.requests()); n != 0 {
			t.Errorf("endpoint %s (not subscribed) got %d requests", id, n)
		}
	}
}

func TestDeliveryTenantWithoutSubscribers(t *testing.T) {
	dt := newDeliveryTest(t)
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", Tenant: "nobody", Payload: json.RawMessage(`{}`)})
	recs, err := dt.delivery(-1, nil).Process(context.Background(), r, nil)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Process = %d records, %v; want nothing", len(recs), err)
	}
}

func TestDeliveryCircuitOpenSkips(t *testing.T) {
	dt := newDeliveryTest(t)
	rc := dt.endpoint("a", status(200))
	b := NewBreaker(BreakerOptions{Threshold: 1, Cooldown: time.Minute})
	b.Report("a", ClassTimeout, Retryable, t0)
	d := dt.delivery(-1, func(c *DeliveryConfig) { c.Breaker = b })
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})

	next, a := process(t, d, r).one(t, testTiers[0].Topic)
	if !a.Skipped || a.ErrorClass != ClassCircuitOpen || a.Outcome != OutcomeRetry || a.StatusCode != 0 {
		t.Fatalf("attempt %+v, want skipped circuit_open retry", a)
	}
	if s := stateOf(t, next); s.LastClass != ClassCircuitOpen || s.Attempts != 1 {
		t.Fatalf("state %+v", s)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("endpoint got %d requests through an open circuit", n)
	}
}

func TestDeliveryBreakerOpensOnDeadEndpoint(t *testing.T) {
	dt := newDeliveryTest(t)
	dt.reg["a"] = endpoints.Endpoint{ID: "a", URL: "http://" + closedAddr(t), Secrets: []string{dt.secret}, Enabled: true}
	d := dt.delivery(-1, func(c *DeliveryConfig) { c.Breaker = NewBreaker(BreakerOptions{Threshold: 2}) })
	var classes []ErrorClass
	for i := range 3 {
		r := eventRecord(t, envelope.Event{ID: fmt.Sprint("evt_", i), Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
		_, a := process(t, d, r).one(t, testTiers[0].Topic)
		classes = append(classes, a.ErrorClass)
	}
	if fmt.Sprint(classes) != "[connection connection circuit_open]" {
		t.Fatalf("classes %v, want two connection errors then circuit_open", classes)
	}
}

func TestDeliveryCanceledIsNotDone(t *testing.T) {
	dt := newDeliveryTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	dt.endpoint("a", func(_ http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	r := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
	recs, err := dt.delivery(-1, nil).Process(ctx, r, nil)
	if !errors.Is(err, context.Canceled) || len(recs) != 0 {
		t.Fatalf("Process = %d records, %v; want context.Canceled and nothing", len(recs), err)
	}
}

func TestNewDeliveryRejectsBadConfig(t *testing.T) {
	valid := func() DeliveryConfig {
		return DeliveryConfig{Stage: "events", TierIndex: -1, Tiers: testTiers, DLQTopic: dlqTopic, AttemptsTopic: attemptsTopic,
			Jitter: 0.2, Endpoints: registry{}, Sender: NewSender(SenderOptions{Destinations: localOnly})}
	}
	tests := []struct {
		field  string
		mutate func(*DeliveryConfig)
	}{
		{"Stage", func(c *DeliveryConfig) { c.Stage = "" }},
		{"Stage", func(c *DeliveryConfig) { c.TierIndex = 1 }},
		{"TierIndex", func(c *DeliveryConfig) { c.TierIndex = 4 }},
		{"DLQTopic", func(c *DeliveryConfig) { c.DLQTopic = "" }},
		{"AttemptsTopic", func(c *DeliveryConfig) { c.AttemptsTopic = "" }},
		{"MaxAttempts", func(c *DeliveryConfig) { c.MaxAttempts = -1 }},
		{"Jitter", func(c *DeliveryConfig) { c.Jitter = 1 }},
		{"Endpoints", func(c *DeliveryConfig) { c.Endpoints = nil }},
		{"Sender", func(c *DeliveryConfig) { c.Sender = nil }},
		{"Tiers[1].Topic", func(c *DeliveryConfig) {
			c.Tiers = append([]TierTarget(nil), testTiers...)
			c.Tiers[1].Topic = ""
		}},
	}
	if _, err := NewDelivery(valid()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			if _, err := NewDelivery(cfg); err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("NewDelivery = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// Pairs whose successors a torn transaction already committed are not
// attempted again; the other pairs of the record are.
func TestDeliverySkipsPairsThatMovedOn(t *testing.T) {
	dt := newDeliveryTest(t)
	rcs := map[string]*receiver{"a": dt.endpoint("a", status(500)), "b": dt.endpoint("b", status(500))}
	for id, ep := range dt.reg {
		ep.Tenant = "acme"
		dt.reg[id] = ep
	}
	movedOn := func(hs ...*kgo.Record) []*kgo.Record { return hs }
	ev := eventRecord(t, envelope.Event{ID: "evt_1", Type: "t", Tenant: "acme", Payload: json.RawMessage(`{}`)})
	aMoved := tierRecord(ev, 0, 7, RetryState{Attempts: 1, EndpointID: "a"})

	out := processHandedOff(t, dt.delivery(-1, nil), ev, movedOn(aMoved))
	if _, a := out.one(t, testTiers[0].Topic); a.EndpointID != "b" || stateOf(t, out.next[0]).EndpointID != "b" {
		t.Errorf("fan-out with a's pair moved on attempted %s, want b only", a.EndpointID)
	}
	if n := len(rcs["a"].requests()); n != 0 {
		t.Errorf("endpoint a, whose pair moved on, got %d requests", n)
	}

	direct := eventRecord(t, envelope.Event{ID: "evt_2", Type: "t", EndpointID: "a", Payload: json.RawMessage(`{}`)})
	malformedMoved := &kgo.Record{Topic: dlqTopic, Headers: RetryState{Tier: TierDLQ}.Headers()}
	for name, c := range map[string]struct {
		d      *Delivery
		r      *kgo.Record
		handed []*kgo.Record
	}{
		"event to an endpoint": {dt.delivery(-1, nil), direct, movedOn(aMoved)},
		"tier record":          {dt.delivery(0, nil), aMoved, movedOn(tierRecord(ev, 1, 9, RetryState{Attempts: 2, EndpointID: "a"}))},
		"record dead-lettered": {dt.delivery(-1, nil), ev, movedOn(malformedMoved)},
	} {
		if recs, err := c.d.Process(context.Background(), c.r, c.handed); err != nil || len(recs) != 0 {
			t.Errorf("%s: Process = %d records, %v; want nothing, it moved on", name, len(recs), err)
		}
	}
	if n := len(rcs["a"].requests()) + len(rcs["b"].requests()); n != 1 {
		t.Errorf("%d requests in all, want only b's", n)
	}
}
