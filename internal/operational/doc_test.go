package operational

import (
	"os"
	"strings"
	"testing"
	"time"
)

// docs/operational-events.md documents every type, and no other.
func TestEveryTypeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operational-events.md")
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "## `"); ok {
			headings = append(headings, strings.TrimSuffix(h, "`"))
		}
	}
	if len(headings) != len(Types) {
		t.Errorf("documented types %q, want %q", headings, Types)
	}
	for i, typ := range Types {
		if i >= len(headings) || headings[i] != string(typ) {
			t.Errorf("type %d: documented %q, want %q in this order", i, headings, Types)
			break
		}
	}
}

func TestEventRoundTripAndStableID(t *testing.T) {
	a := New(EndpointDisabled, time.Unix(1_700_000_000, 0), Data{EndpointID: "ep"}, "attempt-1")
	b := New(EndpointDisabled, time.Unix(1_700_000_000, 0), Data{EndpointID: "ep"}, "attempt-1")
	if a.ID != b.ID || a.ID == New(EndpointFailing, time.Unix(1_700_000_000, 0), Data{}, "attempt-1").ID {
		t.Fatalf("ids %s %s: the same occurrence must have the same id, another type another", a.ID, b.ID)
	}
	r, err := a.Record("ops")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(r.Value)
	if err != nil || got.ID != a.ID || got.Type != a.Type || string(r.Key) != "ep" {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	if _, err := Decode([]byte(`{"version":2}`)); err == nil {
		t.Fatal("an unknown version was accepted")
	}
}
