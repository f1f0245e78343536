package envelope

import (
	"testing"
	"time"
)

func TestCompactID(t *testing.T) {
	gen := NewID(time.Now())
	b, ok := CompactID(gen)
	if !ok || IDFromCompact(b) != gen {
		t.Fatalf("CompactID(%q) = %x, %v; want it back from IDFromCompact", gen, b, ok)
	}
	for _, id := range []string{
		"order-1",
		"",
		"evt_",
		gen[:len(gen)-1],
		gen + "0",
		"EVT_" + gen[4:],
		gen[:4] + "W" + gen[5:], // outside the alphabet
		gen[:len(gen)-1] + "v",  // decodes, but not as NewID spells it
	} {
		if _, ok := CompactID(id); ok {
			t.Errorf("CompactID(%q) = ok, want false: it is not an id NewID returns", id)
		}
	}
}
