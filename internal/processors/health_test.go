package processors

import (
	"testing"
	"time"

	"github.com/hookline/hookline/internal/operational"
)

func TestHealth(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		at        int
		delivered bool
		opened    bool
		want      HealthChange // Since and Failures are not compared
	}
	for _, tc := range []struct {
		name         string
		failingAfter int
		disableAfter time.Duration
		notBefore    int
		steps        []step
	}{
		{"failing after N in a row, once", 3, 0, 0, []step{
			{0, false, false, HealthChange{}},
			{1, false, false, HealthChange{}},
			{2, false, false, HealthChange{Failing: true, Cause: operational.CauseConsecutiveFailures}},
			{3, false, false, HealthChange{}},
		}},
		{"a success in between starts over", 2, 0, 0, []step{
			{0, false, false, HealthChange{}},
			{1, true, false, HealthChange{}},
			{2, false, false, HealthChange{}},
		}},
		{"breaker opening makes it failing at once", 10, 0, 0, []step{
			{0, false, true, HealthChange{Failing: true, Cause: operational.CauseBreakerOpen}},
		}},
		{"recovered only after failing", 1, 0, 0, []step{
			{0, false, false, HealthChange{Failing: true, Cause: operational.CauseConsecutiveFailures}},
			{1, true, false, HealthChange{Recovered: true}},
			{2, true, false, HealthChange{}},
		}},
		{"disable after the duration of failures, not before", 0, time.Minute, 0, []step{
			{0, false, false, HealthChange{}},
			{59, false, false, HealthChange{}},
			{60, false, false, HealthChange{Disable: true}},
		}},
		{"a success resets the disable clock", 0, time.Minute, 0, []step{
			{0, false, false, HealthChange{}},
			{50, true, false, HealthChange{}},
			{100, false, false, HealthChange{}},
			{159, false, false, HealthChange{}},
		}},
		{"disable_after 0 never disables", 0, 0, 0, []step{
			{0, false, false, HealthChange{}},
			{1e6, false, false, HealthChange{}},
		}},
		{"the clock starts no earlier than the endpoint's last change", 0, time.Minute, 30, []step{
			{0, false, false, HealthChange{}},
			{60, false, false, HealthChange{}},
			{90, false, false, HealthChange{Disable: true}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(tc.failingAfter)
			for i, st := range tc.steps {
				got := h.Report("ep", st.delivered, st.opened, tc.disableAfter, sec(tc.notBefore), sec(st.at))
				got.Since, got.Failures = time.Time{}, 0
				if got != st.want {
					t.Fatalf("step %d at %ds: %+v, want %+v", i, st.at, got, st.want)
				}
			}
		})
	}
}
