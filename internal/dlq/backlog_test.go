package dlq

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A backlog keeps only what filters read of a waiting record; every filter
// must judge the kept form as it judges the record.
func TestWaitingEntryMatchesAsTheEntry(t *testing.T) {
	full := NewEntry(dlqRecord(t, sampleEvent(), sampleState()))
	malformed := NewEntry(&kgo.Record{Partition: 1, Offset: 9, Value: []byte("not json"), Timestamp: t0})
	filters := []Filter{
		{},
		{EventIDs: []string{"evt-1"}}, {EventIDs: []string{"x"}},
		{Endpoints: []string{"ep-1"}}, {Endpoints: []string{"ep-2"}},
		{Tenants: []string{"acme"}}, {Tenants: []string{"globex"}},
		{Types: []string{"order.*"}}, {Types: []string{"user.*"}},
		{ErrorClasses: []string{"http_5xx"}}, {ErrorClasses: []string{"malformed_record"}},
		{Statuses: []string{"5xx"}}, {Statuses: []string{"0"}},
		{MinAttempts: 5}, {MinAttempts: 6},
		{Since: t0}, {Since: t0.Add(time.Second)}, {Until: t0}, {Until: t0.Add(time.Second)},
	}
	for _, e := range []*Entry{full, malformed} {
		w := newWaitingEntry(e).entry(e.Partition, e.Offset)
		for _, f := range filters {
			if got, want := f.Match(w, "acme"), f.Match(e, "acme"); got != want {
				t.Errorf("entry %s, filter %s: kept form matches %v, the entry %v", e.Ref(), f, got, want)
			}
		}
	}
}
