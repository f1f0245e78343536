package pipeline

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
		m, err := decodeCommitMeta(commitMeta{done: s}.encode(mark, 7), mark, 7)
		if err != nil {
			t.Fatal(err)
		}
		decoded := m.done
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
	for _, meta := range []string{"", "member-1234", "hl1:!!!", "hl1:AA", "hl2:", "hl2:AA", "hl2:AAAA"} {
		if _, err := decodeCommitMeta(meta, 10, 0); err == nil {
			t.Errorf("decodeCommitMeta(%q) accepted foreign metadata", meta)
		}
	}
}

func TestDoneSetStaysWithinTheMetadataBudget(t *testing.T) {
	outs := []int64{1 << 60, 1 << 60, 1 << 60, 1 << 60, 1 << 60, 1 << 60, 1 << 60}
	for _, span := range []int64{10, 127, 128, 5000, 16383, 16384, 1 << 30, 1 << 40, 1 << 62} {
		n := int64(maxDoneRanges(span))
		n = min(n, span/2)
		step := span / n
		// Gaps as wide as the span allows, or one far gap and narrow ones.
		layouts := map[string]func(i int64) int64{
			"wide": func(i int64) int64 { return i*step + step - 1 },
			"far":  func(i int64) int64 { return span - 2*n + 2*i },
		}
		for name, at := range layouts {
			var s doneSet
			for i := range n {
				s.add(at(i))
			}
			if int64(s.len()) != n || s.end() > span {
				t.Fatalf("span %d %s: built %d ranges ending at %d", span, name, s.len(), s.end())
			}
			if got := len(commitMeta{done: s, outNext: outs}.encode(0, 1<<32-1)); got > 4096 {
				t.Fatalf("span %d %s: metadata of %d ranges and %d outputs is %d bytes, over Kafka's default 4096", span, name, n, len(outs), got)
			}
		}
	}
	if maxDoneRanges(1000) < 700 {
		t.Fatalf("a window of 1000 offsets fits only %d ranges", maxDoneRanges(1000))
	}
}

func TestCommitMetaKeepsOutputOffsetsForTheSameOutputsOnly(t *testing.T) {
	var done doneSet
	done.add(12)
	done.add(13)
	m := commitMeta{done: done, outNext: []int64{-1, 0, 4711}}
	got, err := decodeCommitMeta(m.encode(10, 99), 10, 99)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.outNext) != 3 || got.outNext[0] != -1 || got.outNext[1] != 0 || got.outNext[2] != 4711 {
		t.Errorf("output offsets %v, want [-1 0 4711]", got.outNext)
	}
	if !got.done.contains(12) || !got.done.contains(13) || got.done.contains(11) || got.done.contains(14) {
		t.Errorf("done set %v, want [12,14)", got.done.ranges)
	}
	other, err := decodeCommitMeta(m.encode(10, 99), 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if other.outNext != nil || !other.done.contains(13) {
		t.Errorf("metadata of other outputs: offsets %v (want none), done %v", other.outNext, other.done.ranges)
	}
}

func TestCommitMetaReadsTheFirstFormat(t *testing.T) {
	// "hl1:" + varint pairs, as hookline wrote before the outputs' offsets:
	// gap 2, length 3 above mark 10 is [12,15).
	got, err := decodeCommitMeta("hl1:AgM", 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got.outNext != nil || !got.done.contains(12) || !got.done.contains(14) || got.done.contains(15) {
		t.Errorf("decoded %+v, want done [12,15) and no output offsets", got)
	}
}

// Once the done set is full, the record at the watermark still commits when
// it completes: it moves the watermark and costs no range. Offsets in a
// transactional topic have gaps (commit markers), so the records above it
// are not adjacent to it.
func TestPlanCommitsTheWatermarkRecordWhenTheDoneSetIsFull(t *testing.T) {
	p := &partition{next: 10_000}
	// Completed records above the watermark, one range each.
	for i := range maxDoneRanges(p.next) {
		p.done.add(int64(100 + 3*i))
	}
	rec := func(o int64) *kgo.Record { return &kgo.Record{Offset: o} }
	w := &item{rec: rec(50), done: true}
	above := &item{rec: rec(9000), done: true}
	waiting := &item{rec: rec(60)}
	p.items = []*item{w, waiting, above}

	fp := p.plan()
	if len(fp.flushed) == 0 || fp.flushed[0] != w {
		t.Fatalf("the completed watermark record was kept back by a full done set")
	}
	if fp.mark != 60 {
		t.Fatalf("mark %d, want 60 (the first record not completed)", fp.mark)
	}
	if fp.done.len() > maxDoneRanges(p.next) {
		t.Fatalf("done set has %d ranges, over the budget of %d", fp.done.len(), maxDoneRanges(p.next))
	}
	if slices.Contains(fp.flushed, waiting) {
		t.Fatalf("a record not completed was flushed")
	}
	// With the budget used up, a completed record that needs a range of its
	// own waits for the next commit.
	if !slices.Contains(fp.keep, above) {
		t.Fatalf("a record over the done set's budget was flushed")
	}

	waiting.done = true
	p.items, p.done = []*item{waiting, above}, fp.done
	fp = p.plan()
	if fp.mark != p.next || len(fp.flushed) != 2 || fp.done.len() != 0 {
		t.Fatalf("once every record completed: mark %d, %d flushed, %d ranges; want %d, 2, 0", fp.mark, len(fp.flushed), fp.done.len(), p.next)
	}
}

// Commit markers between records that are not done yet would each be a
// range of their own: they fill the done set only up to its budget, so the
// commit metadata stays within Kafka's 4 KiB (kfake does not check it).
func TestMarkersBetweenWaitingRecordsKeepTheMetadataWithinBudget(t *testing.T) {
	r := &Runner{parts: make(map[int32]*partition), seeds: make(map[int32]*partitionStart)}
	r.cfg.setDefaults()
	now := time.Now()
	const n = 20_000
	for i := range int64(n) {
		r.take(&kgo.Record{Offset: 2 * i, Key: []byte("k")}, now) // a marker after each
	}
	p := r.parts[0]
	if got := len(commitMeta{done: p.done, outNext: []int64{1 << 40, 1 << 40}}.encode(p.watermark(), 1)); got > 4096 {
		t.Fatalf("commit metadata of %d ranges is %d bytes, over Kafka's 4096", p.done.len(), got)
	}
	if p.done.len() == 0 {
		t.Fatal("no marker counted done")
	}
}
