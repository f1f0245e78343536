package envelope

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validEvent() Event {
	return Event{ID: "evt_1", Type: "invoice.paid", EndpointID: "ep_1", Payload: json.RawMessage(`{"amount":42}`)}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Event)
		field  string
	}{
		{"valid", func(*Event) {}, ""},
		{"tenant instead of endpoint", func(e *Event) { e.EndpointID, e.Tenant = "", "acme" }, ""},
		{"current version", func(e *Event) { e.V = Version }, ""},
		{"newer version", func(e *Event) { e.V = Version + 1 }, "v"},
		{"no id", func(e *Event) { e.ID = "" }, "id"},
		{"long id", func(e *Event) { e.ID = strings.Repeat("i", MaxIDLen+1) }, "id"},
		{"no type", func(e *Event) { e.Type = " " }, "type"},
		{"long type", func(e *Event) { e.Type = strings.Repeat("t", MaxTypeLen+1) }, "type"},
		{"no address", func(e *Event) { e.EndpointID = "" }, "endpoint_id"},
		{"both addresses", func(e *Event) { e.Tenant = "acme" }, "endpoint_id"},
		{"no payload", func(e *Event) { e.Payload = nil }, "payload"},
		{"payload not JSON", func(e *Event) { e.Payload = json.RawMessage(`{"a":`) }, "payload"},
		{"control character in id", func(e *Event) { e.ID = "evt\x1b[2J" }, "id"},
		{"control character in type", func(e *Event) { e.Type = "a\nb" }, "type"},
		{"C1 control in ordering key", func(e *Event) { e.OrderingKey = "k\u0085" }, "ordering_key"},
		{"DEL in tenant", func(e *Event) { e.EndpointID, e.Tenant = "", "acme\x7f" }, "tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvent()
			tc.change(&e)
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want a FieldError for %q", err, tc.field)
			}
		})
	}
}

func TestKey(t *testing.T) {
	e := validEvent()
	if got := e.Key(); got != "ep_1" {
		t.Fatalf("Key = %q, want the endpoint id", got)
	}
	e.OrderingKey = "customer-7"
	if got := e.Key(); got != "customer-7" {
		t.Fatalf("Key = %q, want the ordering key", got)
	}
	e.OrderingKey, e.EndpointID, e.Tenant = "", "", "acme"
	if got := e.Key(); got != "acme" {
		t.Fatalf("Key = %q, want the tenant", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	e := validEvent()
	e.OrderingKey = "customer-7"
	rec, err := Record("events", e)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "events" || string(rec.Key) != "customer-7" {
		t.Fatalf("record topic %q key %q", rec.Topic, rec.Key)
	}
	if len(rec.Headers) != 1 || rec.Headers[0].Key != HeaderVersion || string(rec.Headers[0].Value) != "1" {
		t.Fatalf("headers = %v, want %s: 1", rec.Headers, HeaderVersion)
	}
	got, err := Decode(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.V != Version || got.ID != e.ID || got.Type != e.Type || got.EndpointID != e.EndpointID ||
		got.OrderingKey != e.OrderingKey || string(got.Payload) != string(e.Payload) || got.CreatedAt.IsZero() {
		t.Fatalf("decoded %+v, want %+v with version and time", got, e)
	}
	again, err := Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(rec.Value) {
		t.Fatalf("Encode(Decode(v)) = %s, want %s", again, rec.Value)
	}

	if _, err := Record("events", Event{ID: "x"}); err == nil {
		t.Fatal("Record of an invalid event returned no error")
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"not JSON", `nope`, "not an envelope"},
		{"array", `[1]`, "not an envelope"},
		{"no version", `{"id":"e","type":"t","endpoint_id":"ep","payload":{}}`, "version is missing"},
		{"newer version", `{"v":2,"id":"e","type":"t","endpoint_id":"ep","payload":{}}`, "v: envelope version 2"},
		{"no type", `{"v":1,"id":"e","endpoint_id":"ep","payload":{}}`, "type: is required"},
		{"no payload", `{"v":1,"id":"e","type":"t","endpoint_id":"ep"}`, "payload: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.value))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	// A reader accepts any v <= Version; fields added within a version are
	// optional, so an older reader skips them.
	e, err := Decode([]byte(`{"v":1,"id":"e","type":"t","tenant":"acme","payload":[1],"added_later":true}`))
	if err != nil || e.Tenant != "acme" {
		t.Fatalf("Decode = %+v, %v", e, err)
	}
}

func TestNewID(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b := NewID(t0), NewID(t0.Add(time.Millisecond))
	if !strings.HasPrefix(a, "evt_") || len(a) != len("evt_")+26 {
		t.Fatalf("NewID = %q, want evt_ and 26 characters", a)
	}
	if a >= b {
		t.Fatalf("ids do not sort by time: %q >= %q", a, b)
	}
	if c, d := NewID(t0), NewID(t0); c == d {
		t.Fatal("two ids of the same millisecond are equal")
	}
}
