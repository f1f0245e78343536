package pipeline

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
)

// doneSet is the set of offsets above a partition's committed offset whose
// successors are already committed: the records a slow record held back
// from the commit but not from processing. It rides in the commit metadata,
// in the same transaction as those successors, so whoever owns the
// partition next skips them instead of producing their successors twice.
//
// It is kept as sorted, disjoint, non-adjacent ranges [from, to).
type doneSet struct {
	ranges []offsetRange
}

type offsetRange struct{ from, to int64 }

// doneRangeBytes is what the done set's ranges may take before base64 to
// fit Kafka's default offset.metadata.max.bytes (4096): the "hl2:" prefix,
// base64 (4 characters per 3 bytes), and room for the outputs id and up to
// 7 outputs' offsets of 10 bytes each.
const doneRangeBytes = (4096-len(commitMetaPrefix))*3/4 - 80

// maxDoneRanges is how many ranges fit when every offset of the done set
// lies within span of the watermark: a range is two varints (gap,
// length), each at most span. A window of a few thousand offsets fits 747
// ranges, offsets anywhere 166.
func maxDoneRanges(span int64) int {
	n := 1
	for v := uint64(max(span, 1)); v >= 0x80; v >>= 7 {
		n++
	}
	return doneRangeBytes / (2 * n)
}

// end is the offset after the last one in the set, 0 when empty.
func (s *doneSet) end() int64 {
	if len(s.ranges) == 0 {
		return 0
	}
	return s.ranges[len(s.ranges)-1].to
}

// wouldSplitRange reports whether adding [from, to) would create a new
// range: neither from-1 nor to is in the set.
func (s *doneSet) wouldSplitRange(from, to int64) bool {
	return !s.contains(from-1) && !s.contains(to)
}

// addRange inserts [from, to).
func (s *doneSet) addRange(from, to int64) {
	for o := from; o < to; o++ {
		s.add(o)
	}
}

func (s *doneSet) contains(o int64) bool {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].to > o })
	return i < len(s.ranges) && s.ranges[i].from <= o
}

func (s *doneSet) len() int { return len(s.ranges) }

// add inserts o and reports the number of ranges afterwards.
func (s *doneSet) add(o int64) {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].to >= o })
	// i is the first range that ends at or after o.
	if i < len(s.ranges) && s.ranges[i].from <= o && o < s.ranges[i].to {
		return
	}
	joinLeft := i < len(s.ranges) && s.ranges[i].to == o
	joinRight := func(j int) bool { return j < len(s.ranges) && s.ranges[j].from == o+1 }
	switch {
	case joinLeft && joinRight(i+1):
		s.ranges[i].to = s.ranges[i+1].to
		s.ranges = append(s.ranges[:i+1], s.ranges[i+2:]...)
	case joinLeft:
		s.ranges[i].to = o + 1
	case joinRight(i):
		s.ranges[i].from = o
	default:
		s.ranges = append(s.ranges, offsetRange{})
		copy(s.ranges[i+1:], s.ranges[i:])
		s.ranges[i] = offsetRange{o, o + 1}
	}
}

// wouldSplit reports whether adding o would create a new range.
func (s *doneSet) wouldSplit(o int64) bool {
	if s.contains(o) {
		return false
	}
	for _, r := range s.ranges {
		if r.to == o || r.from == o+1 {
			return false
		}
	}
	return true
}

// prune drops every offset below mark.
func (s *doneSet) prune(mark int64) {
	i := 0
	for i < len(s.ranges) && s.ranges[i].to <= mark {
		i++
	}
	s.ranges = s.ranges[i:]
	if len(s.ranges) > 0 && s.ranges[0].from < mark {
		s.ranges[0].from = mark
	}
}

func (s doneSet) clone() doneSet {
	return doneSet{ranges: append([]offsetRange(nil), s.ranges...)}
}

// Commit metadata formats. "hl1:" is the done set alone (what hookline
// wrote first); "hl2:" adds the outputs' next offsets (see commitMeta).
const (
	doneSetPrefix    = "hl1:"
	commitMetaPrefix = "hl2:"
)

// commitMeta is what a stage commits beside a partition's offset: the done
// set, and for each of the stage's chain outputs (RunnerConfig.Outputs, in
// order) the offset, in the same partition number, after the last successor
// committed from this partition (-1: unknown). The next owner reads each
// output from there on to find successors that a crash left committed
// without their offsets (see audit).
type commitMeta struct {
	done    doneSet
	outNext []int64
}

// encode writes m relative to mark (the committed offset) as "hl2:" and
// base64 of: outputsID, the number of outputs, each next offset + 1, then
// the done set as varint pairs (gap from the previous end, length).
// outputsID names the list of outputs, so that offsets written for another
// list are not read as this one's.
func (m commitMeta) encode(mark int64, outputsID uint32) string {
	if len(m.done.ranges) == 0 && len(m.outNext) == 0 {
		return ""
	}
	buf := make([]byte, 0, 16+8*len(m.outNext)+4*len(m.done.ranges))
	buf = binary.AppendUvarint(buf, uint64(outputsID))
	buf = binary.AppendUvarint(buf, uint64(len(m.outNext)))
	for _, o := range m.outNext {
		buf = binary.AppendUvarint(buf, uint64(o+1))
	}
	prev := mark
	for _, r := range m.done.ranges {
		buf = binary.AppendUvarint(buf, uint64(r.from-prev))
		buf = binary.AppendUvarint(buf, uint64(r.to-r.from))
		prev = r.to
	}
	return commitMetaPrefix + base64.RawURLEncoding.EncodeToString(buf)
}

var errNotDoneSet = errors.New("commit metadata is not a hookline done set")

// decodeCommitMeta reads what encode wrote, or an "hl1:" done set. Output
// offsets written for another list of outputs than outputsID are dropped.
// Metadata written by anything else (kgo writes the member id) is
// errNotDoneSet: nothing to skip.
func decodeCommitMeta(meta string, mark int64, outputsID uint32) (commitMeta, error) {
	if rest, ok := strings.CutPrefix(meta, doneSetPrefix); ok {
		buf, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			return commitMeta{}, errNotDoneSet
		}
		done, err := decodeRanges(buf, mark)
		return commitMeta{done: done}, err
	}
	rest, ok := strings.CutPrefix(meta, commitMetaPrefix)
	if !ok {
		return commitMeta{}, errNotDoneSet
	}
	buf, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return commitMeta{}, errNotDoneSet
	}
	id, n := binary.Uvarint(buf)
	if n <= 0 {
		return commitMeta{}, errNotDoneSet
	}
	buf = buf[n:]
	count, n := binary.Uvarint(buf)
	if n <= 0 || count > uint64(len(buf)) {
		return commitMeta{}, errNotDoneSet
	}
	buf = buf[n:]
	outNext := make([]int64, count)
	for i := range outNext {
		v, n := binary.Uvarint(buf)
		if n <= 0 || v > 1<<62 {
			return commitMeta{}, errNotDoneSet
		}
		buf = buf[n:]
		outNext[i] = int64(v) - 1
	}
	done, err := decodeRanges(buf, mark)
	if err != nil {
		return commitMeta{}, err
	}
	if uint32(id) != outputsID || id > 1<<32-1 {
		outNext = nil
	}
	return commitMeta{done: done, outNext: outNext}, nil
}

// decodeRanges reads varint pairs (gap from the previous end, length).
func decodeRanges(buf []byte, mark int64) (doneSet, error) {
	var s doneSet
	prev := mark
	for len(buf) > 0 {
		gap, n := binary.Uvarint(buf)
		if n <= 0 || gap > 1<<62 {
			return doneSet{}, errNotDoneSet
		}
		buf = buf[n:]
		length, n := binary.Uvarint(buf)
		if n <= 0 || length == 0 || length > 1<<62 {
			return doneSet{}, errNotDoneSet
		}
		buf = buf[n:]
		from := prev + int64(gap)
		s.ranges = append(s.ranges, offsetRange{from, from + int64(length)})
		prev = from + int64(length)
	}
	return s, nil
}
