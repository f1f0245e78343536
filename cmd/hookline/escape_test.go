package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"order.created", "order.created"},
		{"commande.créée ✓", "commande.créée ✓"},
		{"evt\x1b[31mred", `evt\x1b[31mred`},
		{"two\nlines\r", `two\nlines\r`},
		{"tab\there", `tab\there`},
		{"c1\u009bx", `c1\u009bx`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"nul\x00", `nul\x00`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// No text the CLI prints carries a control character that came from a
// record: an event type or id written straight to Kafka with a terminal
// escape shows as \x1b, in the list, in show and in the endpoints table.
func TestCLIEscapesWhatItPrints(t *testing.T) {
	const evil = "x\x1b]0;pwned\x07\x1b[2J\ny"
	var buf bytes.Buffer
	writeListLine(&buf, dlq.Summary{EventID: evil, Endpoint: evil, Tenant: evil, Type: evil, ErrorClass: evil, LastAttempt: time.Unix(0, 0)})
	e := &dlq.Entry{Key: []byte(evil), Value: []byte(evil), EventID: evil, EventType: evil, Tenant: evil}
	e.State.LastError, e.State.DLQReason, e.State.OriginTopic = evil, evil, evil
	s := shown{Summary: e.Summary(evil), Key: evil, Headers: map[string]string{evil: evil}}
	writeShown(&buf, e, s, false)
	if err := writeEndpointsTable(&buf, []endpointView{{Endpoint: endpoints.Endpoint{ID: "ep", URL: "https://x/" + evil, Tenant: evil, EventTypes: []string{evil}}}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("output carries control characters:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "y") {
			t.Fatalf("a newline in a field started a line of its own:\n%s", out)
		}
	}
}
