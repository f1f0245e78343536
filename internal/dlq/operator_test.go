package dlq

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/topics"
)

// The operator name is self-declared and shown in audit listings, so it
// must be printable: a replay with a terminal escape or a forged newline
// in it is refused before anything is read or sent.
func TestReplayRefusesUnprintableOperator(t *testing.T) {
	c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topics: topics.New("h.", []time.Duration{time.Second}, 1, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		operator string
		ok       bool
	}{
		{"alice", true},
		{"Zoë Müller (on call)", true},
		{"alice\x1b[2J", false},
		{"alice\nroot  2026-01-01", false},
		{"al\u202eice", false},
		{" alice", false},
		{strings.Repeat("a", MaxOperatorLen+1), false},
		{"bad\xff", false},
	} {
		if err := CheckOperator(tt.operator); (err == nil) != tt.ok {
			t.Errorf("CheckOperator(%q) = %v, want ok %v", tt.operator, err, tt.ok)
		}
		if tt.ok {
			continue
		}
		if _, err := c.Replay(t.Context(), ReplayOptions{ID: "r", Operator: tt.operator, DryRun: true}); err == nil || !strings.Contains(err.Error(), "operator") {
			t.Errorf("Replay with operator %q: %v, want refused naming the operator", tt.operator, err)
		}
	}
}
