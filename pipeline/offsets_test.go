package pipeline

import (
	"math/rand/v2"
	"testing"
)

func TestDoneSetMatchesAPlainSet(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var s doneSet
		want := make(map[int64]bool)
		for range 200 {
			o := int64(100 + rng.IntN(300))
			s.add(o)
			want[o] = true
		}
		mark := int64(100 + rng.IntN(150))
		s.prune(mark)
		decoded, err := decodeDoneSet(s.encode(mark), mark)
		if err != nil {
			t.Fatal(err)
		}
		for o := int64(90); o < 420; o++ {
			in := want[o] && o >= mark
			if s.contains(o) != in || decoded.contains(o) != in {
				t.Fatalf("seed %d: offset %d: contains %v, decoded %v, want %v", seed, o, s.contains(o), decoded.contains(o), in)
			}
		}
		for i := 1; i < len(s.ranges); i++ {
			if s.ranges[i].from <= s.ranges[i-1].to {
				t.Fatalf("seed %d: ranges overlap or touch: %v", seed, s.ranges)
			}
		}
	}
}

func TestDoneSetIgnoresForeignMetadata(t *testing.T) {
	for _, meta := range []string{"", "member-1234", "hl1:!!!", "hl1:AA"} {
		if _, err := decodeDoneSet(meta, 10); err == nil {
			t.Errorf("decodeDoneSet(%q) accepted foreign metadata", meta)
		}
	}
}

func TestDoneSetStaysWithinTheMetadataBudget(t *testing.T) {
	var s doneSet
	for i := range int64(maxDoneRanges) {
		s.add(1<<40 + 3*i)
	}
	if n := len(s.encode(0)); n > 4096 {
		t.Fatalf("metadata of %d ranges is %d bytes, over Kafka's default 4096", maxDoneRanges, n)
	}
}
