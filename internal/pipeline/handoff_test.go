package pipeline

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The source header an output carries names its record, as the hand-off
// audit reads it back.
func TestSourceHeaderNamesTheRecord(t *testing.T) {
	for _, r := range []*kgo.Record{
		{Topic: "hookline.events", Partition: 3, Offset: 42},
		{Topic: "t", Partition: 0, Offset: 0},
		{Topic: "hookline.retry.30s", Partition: math.MaxInt32, Offset: math.MaxInt64},
	} {
		v := sourceOf(r)
		topic, partition, offset, ok := parseSource(string(v))
		if !ok || topic != r.Topic || partition != r.Partition || offset != r.Offset {
			t.Errorf("sourceOf(%s/%d/%d) = %q, read back as %s/%d/%d (ok %v)", r.Topic, r.Partition, r.Offset, v, topic, partition, offset, ok)
		}
	}
}
