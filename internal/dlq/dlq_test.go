package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/topics"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// dlqRecord is a DLQ record as the delivery stage writes it.
func dlqRecord(t *testing.T, ev envelope.Event, st processors.RetryState, extra ...kgo.RecordHeader) *kgo.Record {
	t.Helper()
	v, err := envelope.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	hs := append([]kgo.RecordHeader{{Key: envelope.HeaderVersion, Value: []byte("1")}}, extra...)
	return &kgo.Record{Topic: "h.dlq", Partition: 3, Offset: 42, Key: []byte("key"), Value: v, Headers: append(hs, st.Headers()...), Timestamp: t0}
}

func sampleEvent() envelope.Event {
	return envelope.Event{V: 1, ID: "evt-1", Type: "order.paid", EndpointID: "ep-1", Payload: json.RawMessage(`{"n":1}`), CreatedAt: t0.Add(-time.Hour)}
}

func sampleState() processors.RetryState {
	return processors.RetryState{
		Attempts: 5, FirstAttempt: t0.Add(-time.Hour), Entered: t0, LastStatus: 503, LastError: "HTTP 503",
		LastClass: processors.ClassHTTP5xx, OriginTopic: "h.events", OriginPartition: 3, OriginOffset: 7,
		EndpointID: "ep-1", Tier: processors.TierDLQ, DLQReason: "attempts exhausted",
	}
}

func TestFilterMatch(t *testing.T) {
	e := NewEntry(dlqRecord(t, sampleEvent(), sampleState()))
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"zero", Filter{}, true},
		{"event id", Filter{EventIDs: []string{"x", "evt-1"}}, true},
		{"other event id", Filter{EventIDs: []string{"x"}}, false},
		{"endpoint", Filter{Endpoints: []string{"ep-1"}}, true},
		{"other endpoint", Filter{Endpoints: []string{"ep-2"}}, false},
		{"tenant of the endpoint", Filter{Tenants: []string{"acme"}}, true},
		{"other tenant", Filter{Tenants: []string{"globex"}}, false},
		{"type", Filter{Types: []string{"order.paid"}}, true},
		{"type prefix", Filter{Types: []string{"order.*"}}, true},
		{"other type", Filter{Types: []string{"order"}}, false},
		{"class", Filter{ErrorClasses: []string{"timeout", "http_5xx"}}, true},
		{"other class", Filter{ErrorClasses: []string{"timeout"}}, false},
		{"status", Filter{Statuses: []string{"503"}}, true},
		{"status class", Filter{Statuses: []string{"5xx"}}, true},
		{"other status", Filter{Statuses: []string{"4xx", "0"}}, false},
		{"min attempts", Filter{MinAttempts: 5}, true},
		{"too few attempts", Filter{MinAttempts: 6}, false},
		{"since inclusive", Filter{Since: t0}, true},
		{"since after", Filter{Since: t0.Add(time.Second)}, false},
		{"until exclusive", Filter{Until: t0}, false},
		{"until after", Filter{Until: t0.Add(time.Second)}, true},
		{"all together", Filter{Endpoints: []string{"ep-1"}, Types: []string{"order.*"}, Statuses: []string{"5xx"}, Since: t0.Add(-time.Minute)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.f.Match(e, "acme"); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"unknown class", Filter{ErrorClasses: []string{"http_5xxx"}}, "--error-class: unknown error class"},
		{"bad status", Filter{Statuses: []string{"700"}}, "--status"},
		{"status word", Filter{Statuses: []string{"five"}}, "--status"},
		{"star inside", Filter{Types: []string{"order.*.paid"}}, "--type"},
		{"negative attempts", Filter{MinAttempts: -1}, "--min-attempts"},
		{"negative limit", Filter{Limit: -2}, "--limit"},
		{"until before since", Filter{Since: t0, Until: t0.Add(-time.Hour)}, "--until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want ErrBadFilter naming %q", err, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), true},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), true},
		{"90m", t0.Add(-90 * time.Minute), true},
		{"yesterday", time.Time{}, false},
		{"-5m", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, t0)
			if (err == nil) != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestNewEntryKeepsAMalformedRecordReadable(t *testing.T) {
	r := &kgo.Record{Partition: 1, Offset: 9, Value: []byte("not json"), Timestamp: t0,
		Headers: []kgo.RecordHeader{{Key: processors.HeaderAttempts, Value: []byte("x")}}}
	e := NewEntry(r)
	if e.EnvelopeErr == nil || e.StateErr == nil || e.Ref() != "1:9" || !e.DeadLetteredAt().Equal(t0) {
		t.Errorf("entry = %+v, want envelope and state errors, ref 1:9, dead-lettered at the record time", e)
	}
}

func TestPacerSpacesSendsWithoutBursts(t *testing.T) {
	now := t0
	var slept time.Duration
	p := newPacer(10, func() time.Time { return now }, func(_ context.Context, d time.Duration) error {
		slept += d
		now = now.Add(d)
		return nil
	})
	for range 31 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := now.Sub(t0); got != 3*time.Second {
		t.Errorf("31 sends at 10/s took %v, want 3s", got)
	}
	// Idle time earns no burst.
	now = now.Add(10 * time.Second)
	start := now
	for range 3 {
		_ = p.Wait(context.Background())
	}
	if got := now.Sub(start); got != 200*time.Millisecond {
		t.Errorf("3 sends after a pause took %v, want 200ms", got)
	}
	if unlimited := newPacer(0, time.Now, nil); unlimited.Wait(context.Background()) != nil || unlimited.Delay() != 0 {
		t.Error("rate 0 must not wait")
	}
}

func testClient() *Client {
	set := topics.New("h.", []time.Duration{30 * time.Second, 2 * time.Minute}, 1, 4, -1)
	return &Client{cfg: Config{Topics: set, Now: func() time.Time { return t0 }}}
}

func headers(r *kgo.Record) map[string][]string {
	out := map[string][]string{}
	for _, h := range r.Headers {
		out[h.Key] = append(out[h.Key], string(h.Value))
	}
	return out
}

func TestReplayRecordToEvents(t *testing.T) {
	c := testClient()
	old := []kgo.RecordHeader{{Key: HeaderReplayID, Value: []byte("older")}, {Key: envelope.HeaderIdempotencyKey, Value: []byte("idem")}}
	e := NewEntry(dlqRecord(t, sampleEvent(), sampleState(), old...))
	rec, err := c.replayRecord(e, TargetEvents, mark{id: "r1", operator: "ops", at: t0})
	if err != nil {
		t.Fatal(err)
	}
	hs := headers(rec)
	switch {
	case rec.Topic != "h.events" || rec.Partition != 3 || string(rec.Key) != "key":
		t.Errorf("record goes to %s/%d key %q, want h.events/3 key \"key\"", rec.Topic, rec.Partition, rec.Key)
	case string(rec.Value) != string(e.Value):
		t.Errorf("value changed: %s", rec.Value)
	case len(hs[HeaderReplayID]) != 1 || hs[HeaderReplayID][0] != "r1" || hs[HeaderReplayOperator][0] != "ops" ||
		hs[HeaderReplayAt][0] != strconv.FormatInt(t0.UnixMilli(), 10) || hs[HeaderReplaySource][0] != "h.dlq/3/42":
		t.Errorf("replay headers = %v", hs)
	case hs[processors.HeaderAttempts] != nil || hs[processors.HeaderEndpoint] != nil:
		t.Errorf("retry state carried into the events topic: %v", hs)
	case hs[envelope.HeaderIdempotencyKey] == nil || hs[envelope.HeaderVersion] == nil:
		t.Errorf("envelope headers lost: %v", hs)
	}
}

func TestReplayRecordOfAFanOutEventAddressesItsEndpoint(t *testing.T) {
	c := testClient()
	ev := sampleEvent()
	ev.EndpointID, ev.Tenant = "", "acme"
	e := NewEntry(dlqRecord(t, ev, sampleState()))
	rec, err := c.replayRecord(e, TargetEvents, mark{id: "r1", operator: "ops", at: t0})
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.Decode(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.EndpointID != "ep-1" || got.Tenant != "" || string(got.Payload) != string(ev.Payload) || !got.CreatedAt.Equal(ev.CreatedAt) {
		t.Errorf("replayed envelope = %+v, want event %s addressed to ep-1 alone", got, ev.ID)
	}
}

func TestReplayRecordToRetry(t *testing.T) {
	c := testClient()
	e := NewEntry(dlqRecord(t, sampleEvent(), sampleState()))
	rec, err := c.replayRecord(e, TargetRetry, mark{id: "r1", operator: "ops", at: t0})
	if err != nil {
		t.Fatal(err)
	}
	st, err := processors.ParseRetryState(rec.Headers)
	if err != nil {
		t.Fatal(err)
	}
	want := processors.RetryState{Entered: t0, Due: t0, EndpointID: "ep-1", Tier: "retry.30s", OriginTopic: "h.events", OriginPartition: 3, OriginOffset: 7}
	if rec.Topic != "h.retry.30s" || rec.Partition != 3 || st != want {
		t.Errorf("record to %s/%d with state %+v, want h.retry.30s/3 with %+v", rec.Topic, rec.Partition, st, want)
	}
	if len(headers(rec)[processors.HeaderAttempts]) != 1 {
		t.Errorf("retry state headers doubled: %v", headers(rec))
	}

	// A record dead-lettered before it had an endpoint cannot be retried.
	bad := NewEntry(&kgo.Record{Value: []byte("junk")})
	if _, err := c.replayRecord(bad, TargetRetry, mark{}); err == nil {
		t.Error("a record without an endpoint was sent to a retry tier")
	}
}

func TestResumable(t *testing.T) {
	prior := &AuditRecord{ReplayID: "r", Target: TargetRetry, Filter: Filter{Endpoints: []string{"a"}}}
	o := ReplayOptions{}
	if err := resumable(prior, &o); err != nil || o.Target != TargetRetry || !o.Filter.Equal(prior.Filter) {
		t.Errorf("resume without settings = %v, %+v; want the stored ones", err, o)
	}
	for _, o := range []ReplayOptions{{Target: TargetEvents}, {Filter: Filter{Endpoints: []string{"b"}}}} {
		if err := resumable(prior, &o); !errors.Is(err, ErrReplayMismatch) {
			t.Errorf("resume with %+v = %v, want ErrReplayMismatch", o, err)
		}
	}
}
