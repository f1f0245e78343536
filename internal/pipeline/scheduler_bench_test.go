package pipeline

import (
	"strconv"
	"testing"
)

// BenchmarkScheduler measures the scheduler's work per record in a full
// window: add a record, start what is due, finish it. keys records of
// distinct keys are in the window, all due, at the default concurrency.
func BenchmarkScheduler(b *testing.B) {
	for _, keys := range []int{32, 512, 3000} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			s := newScheduler(Limits{Concurrency: DefaultConcurrency, MaxRecords: DefaultMaxInFlight, MaxBytes: DefaultMaxInFlightBytes})
			names := make([]string, keys)
			for i := range names {
				names[i] = "key-" + strconv.Itoa(i)
			}
			var off int64
			add := func() {
				s.hold(100)
				s.add(&task{offset: off, key: names[int(off)%keys], due: at(int(off % 60))})
				off++
			}
			for range keys {
				add()
			}
			now := at(60)
			b.ReportAllocs()
			for b.Loop() {
				add()
				for _, t := range s.start(now) {
					s.finished(t, false)
					s.release(100)
				}
			}
		})
	}
}
