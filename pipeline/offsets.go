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

// maxDoneRanges bounds the metadata: Kafka's default offset.metadata.max.bytes
// is 4096, and a range costs at most 20 bytes before base64.
const maxDoneRanges = 150

const doneSetPrefix = "hl1:"

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

// encode writes the set relative to mark (the committed offset) as
// "hl1:" and base64 of varint pairs (gap from the previous end, length).
func (s doneSet) encode(mark int64) string {
	if len(s.ranges) == 0 {
		return ""
	}
	buf := make([]byte, 0, 4*len(s.ranges))
	prev := mark
	for _, r := range s.ranges {
		buf = binary.AppendUvarint(buf, uint64(r.from-prev))
		buf = binary.AppendUvarint(buf, uint64(r.to-r.from))
		prev = r.to
	}
	return doneSetPrefix + base64.RawURLEncoding.EncodeToString(buf)
}

var errNotDoneSet = errors.New("commit metadata is not a hookline done set")

// decodeDoneSet reads what encode wrote. Metadata written by anything else
// (kgo writes the member id) is errNotDoneSet: nothing to skip.
func decodeDoneSet(meta string, mark int64) (doneSet, error) {
	rest, ok := strings.CutPrefix(meta, doneSetPrefix)
	if !ok {
		return doneSet{}, errNotDoneSet
	}
	buf, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return doneSet{}, errNotDoneSet
	}
	var s doneSet
	prev := mark
	for len(buf) > 0 {
		gap, n := binary.Uvarint(buf)
		if n <= 0 {
			return doneSet{}, errNotDoneSet
		}
		buf = buf[n:]
		length, n := binary.Uvarint(buf)
		if n <= 0 || length == 0 {
			return doneSet{}, errNotDoneSet
		}
		buf = buf[n:]
		from := prev + int64(gap)
		s.ranges = append(s.ranges, offsetRange{from, from + int64(length)})
		prev = from + int64(length)
	}
	return s, nil
}
