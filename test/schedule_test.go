package test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
)

// The case of issue 11: on one partition, endpoint A answers 429 with
// Retry-After: 20 and endpoint B 503 once. B's retry goes out at its own
// due time, not when A's comes due.
func TestRetryAfterOfOneEndpointHoldsNoOther(t *testing.T) {
	cfg := testConfig(t)
	cfg.Partitions = 1
	cfg.TierScale = 0.01 // tiers of 300ms, 1.2s, 6s and 36s
	h := start(t, cfg)
	a := newReceiver(t, func(string, int) int { return http.StatusTooManyRequests })
	a.retryAfter = "20"
	b := newReceiver(t, func(_ string, attempt int) int {
		if attempt == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	h.addEndpoint("a", a, time.Second)
	h.addEndpoint("b", b, time.Second)
	h.send("evt-a", "a", "ka", map[string]int{"n": 1})
	waitFor(t, 10*time.Second, "A's first attempt", func() bool {
		_, counts, _ := a.snapshot()
		return counts["evt-a"] == 1
	})
	h.send("evt-b", "b", "kb", map[string]int{"n": 2})
	waitFor(t, 15*time.Second, "B's retry", func() bool {
		_, counts, _ := b.snapshot()
		return counts["evt-b"] == 2
	})
	bHits, _, _ := b.snapshot()
	aHits, _, _ := a.snapshot()
	retried := bHits[1].at

	// B's retry waits in the first tier; A's, with a Retry-After of 20s,
	// in the first whose delay (36s) covers it.
	bID, bDue := tierDue(t, h, 0)
	aID, aDue := tierDue(t, h, 3)
	if bID != "evt-b" || aID != "evt-a" {
		t.Fatalf("the first tier holds %s and the last %s, want evt-b and evt-a", bID, aID)
	}
	late := retried.Sub(bDue)
	t.Logf("B's retry went out %v after its due time; A's is due %v after its first attempt",
		late.Round(time.Millisecond), aDue.Sub(aHits[0].at).Round(time.Millisecond))
	switch {
	case retried.Before(bDue.Truncate(time.Millisecond)):
		t.Errorf("B's retry went out %v before its due time", bDue.Sub(retried))
	case late > time.Second:
		t.Errorf("B's retry went out %v after its due time, want within 1s", late)
	}
	if len(aHits) != 1 {
		t.Errorf("A got %d requests by the time B's retry went out; its Retry-After had not passed", len(aHits))
	}
	if aDue.Before(aHits[0].at.Add(20*time.Second - 10*time.Millisecond)) {
		t.Errorf("A's retry is due %v after its first attempt, before its Retry-After of 20s", aDue.Sub(aHits[0].at))
	}
}

// tierDue reads the one record in tier i and returns its event id and due
// time.
func tierDue(t *testing.T, h *harness, i int) (string, time.Time) {
	t.Helper()
	recs := h.readTopic(h.env.Topics.Tiers[i].Topic, 1, 15*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%s holds %d records, want 1", h.env.Topics.Tiers[i].Topic, len(recs))
	}
	st, err := processors.ParseRetryState(recs[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := envelope.Decode(recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return ev.ID, st.Due
}

// 2,000 events over 100 keys to an endpoint that always fails, through
// every tier with the default ±20% jitter: no attempt goes out before its
// tier record is due, and how late they went is reported.
func TestJitteredTiersAreNeverEarly(t *testing.T) {
	const events, keys = 2000, 100
	cfg := testConfig(t)
	h := start(t, cfg)
	rc := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
	h.addEndpoint("down", rc, time.Second)
	for i := range events {
		h.send(fmt.Sprintf("evt-%d", i), "down", fmt.Sprintf("k%d", i%keys), map[string]int{"n": i})
	}
	tiers := len(h.env.Topics.Tiers)
	attempts := h.attempts(events*(tiers+1), 3*time.Minute)
	if len(attempts) != events*(tiers+1) {
		t.Fatalf("got %d attempt records, want %d", len(attempts), events*(tiers+1))
	}
	due := make(map[string]time.Time, events*tiers)
	for _, tier := range h.env.Topics.Tiers {
		recs := h.readTopic(tier.Topic, events, time.Minute)
		if len(recs) != events {
			t.Fatalf("%s holds %d records, want %d", tier.Topic, len(recs), events)
		}
		for _, r := range recs {
			st, err := processors.ParseRetryState(r.Headers)
			if err != nil {
				t.Fatal(err)
			}
			due[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = st.Due
		}
	}
	var lateness []time.Duration
	byTier := make(map[string][]time.Duration)
	early := 0
	for _, a := range attempts {
		if a.Tier == processors.StageEvents {
			continue
		}
		src := strings.TrimSuffix(a.AttemptID, "/"+a.EndpointID)
		d, ok := due[src]
		if !ok {
			t.Fatalf("attempt %s: no tier record at %s", a.AttemptID, src)
		}
		if a.StartedAt.Before(d.Truncate(time.Millisecond)) {
			early++
			if early <= 5 {
				t.Errorf("attempt %d of %s in %s started %v before its due time", a.Attempt, a.EventID, a.Tier, d.Sub(a.StartedAt))
			}
		}
		lateness = append(lateness, a.StartedAt.Sub(d))
		byTier[a.Tier] = append(byTier[a.Tier], a.StartedAt.Sub(d))
	}
	if early > 0 {
		t.Errorf("%d of %d tier attempts started before their due time", early, len(lateness))
	}
	t.Logf("%d tier attempts: lateness %s", len(lateness), quantiles(lateness))
	for _, tier := range h.env.Topics.Tiers {
		t.Logf("%s: lateness %s", tier.Name, quantiles(byTier[tier.Name]))
	}
}

// quantiles says p50, p99 and max of ds.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v", q(0.5), q(0.99), q(1))
}
