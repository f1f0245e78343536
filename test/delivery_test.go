package test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
)

func TestHealthyEndpointReceivesEveryEventExactlyOnce(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil)
	h.addEndpoint("shop", rc, time.Second)
	const n = 300
	for i := range n {
		h.send(fmt.Sprintf("evt-%d", i), "shop", fmt.Sprint("k", i%10), map[string]int{"n": i})
	}
	waitFor(t, 30*time.Second, "every event delivered", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == n
	})
	// Give a duplicate the time to show up before judging.
	h.attempts(n, 30*time.Second)
	_, counts, bad := rc.snapshot()
	for i := range n {
		if c := counts[fmt.Sprintf("evt-%d", i)]; c != 1 {
			t.Errorf("evt-%d delivered %d times, want exactly once", i, c)
		}
	}
	if bad != 0 {
		t.Errorf("%d requests failed signature verification with the reference library", bad)
	}
}

// An endpoint failing its first k attempts gets the event on attempt k+1,
// and no attempt is made before the due time of the tier record it came from.
func TestRetriesDeliverOnAttemptKPlusOneNeverEarly(t *testing.T) {
	h := start(t, testConfig(t))
	const k = 3
	rc := newReceiver(t, func(_ string, attempt int) int {
		if attempt <= k {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	h.addEndpoint("flaky", rc, time.Second)
	const n = 20
	for i := range n {
		h.send(fmt.Sprintf("evt-%d", i), "flaky", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	atts := h.attempts(n*(k+1), 60*time.Second)
	if len(atts) != n*(k+1) {
		t.Fatalf("got %d attempt records, want %d", len(atts), n*(k+1))
	}
	_, counts, _ := rc.snapshot()
	for i := range n {
		if c := counts[fmt.Sprintf("evt-%d", i)]; c != k+1 {
			t.Errorf("evt-%d: %d requests, want %d (delivered on attempt k+1)", i, c, k+1)
		}
	}

	// Every tier record's due time, by its coordinates.
	due := make(map[string]time.Time)
	for _, tier := range h.env.Topics.Tiers[:k] {
		for _, r := range h.readTopic(tier.Topic, n, 10*time.Second) {
			st, err := processors.ParseRetryState(r.Headers)
			if err != nil {
				t.Fatal(err)
			}
			if min := st.Entered.Add(time.Duration(float64(tier.Delay) * (1 - h.cfg.Jitter))); st.Due.Before(min) {
				t.Errorf("%s record due %v, before entered+delay*(1-jitter) %v", tier.Name, st.Due, min)
			}
			due[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = st.Due
		}
	}
	checked := 0
	for _, a := range atts {
		if a.Tier == processors.StageEvents {
			continue
		}
		src := a.AttemptID[:len(a.AttemptID)-len("/flaky")]
		d, ok := due[src]
		if !ok {
			t.Fatalf("attempt %s: no tier record at %s", a.AttemptID, src)
		}
		// Due times are stored in milliseconds.
		if a.StartedAt.Before(d.Truncate(time.Millisecond)) {
			t.Errorf("attempt %d of %s in %s started %v before its due time %v", a.Attempt, a.EventID, a.Tier, a.StartedAt, d)
		}
		checked++
	}
	if checked != n*k {
		t.Fatalf("checked %d tier attempts, want %d", checked, n*k)
	}
}

func TestDeadEndpointReachesTheDLQAfterTheLastTierWithAllHeaders(t *testing.T) {
	cfg := testConfig(t)
	h := start(t, cfg)
	rc := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	h.addEndpoint("dead", rc, time.Second)
	const n = 5
	for i := range n {
		h.send(fmt.Sprintf("evt-%d", i), "dead", "k", map[string]int{"n": i})
	}
	dlq := h.readTopic(h.env.Topics.DLQ, n, 60*time.Second)
	if len(dlq) != n {
		t.Fatalf("%d records in the DLQ, want %d", len(dlq), n)
	}
	for _, r := range dlq {
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			t.Fatalf("DLQ record headers: %v", err)
		}
		if st.Attempts != len(cfg.Tiers)+1 {
			t.Errorf("DLQ record after %d attempts, want %d (one per tier plus the first)", st.Attempts, len(cfg.Tiers)+1)
		}
		if st.EndpointID != "dead" || st.LastStatus != 500 || st.LastClass != processors.ClassHTTP5xx ||
			st.OriginTopic != h.env.Topics.Events || st.FirstAttempt.IsZero() || st.DLQReason == "" || st.Tier != processors.TierDLQ {
			t.Errorf("DLQ record lacks context: %+v", st)
		}
		if len(r.Value) == 0 {
			t.Error("DLQ record has no event")
		}
	}
	_, counts, _ := rc.snapshot()
	for id, c := range counts {
		if c != len(cfg.Tiers)+1 {
			t.Errorf("%s attempted %d times, want %d", id, c, len(cfg.Tiers)+1)
		}
	}
}

func TestPermanent4xxGoesStraightToTheDLQ(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, func(string, int) int { return http.StatusBadRequest })
	h.addEndpoint("strict", rc, time.Second)
	h.send("evt-400", "strict", "k", map[string]string{"bad": "field"})
	dlq := h.readTopic(h.env.Topics.DLQ, 1, 20*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("%d DLQ records, want 1", len(dlq))
	}
	st, err := processors.ParseRetryState(dlq[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts != 1 || st.LastStatus != 400 || st.LastClass != processors.ClassHTTP4xx {
		t.Errorf("want one attempt, status 400, class http_4xx; got %+v", st)
	}
	for _, tier := range h.env.Topics.Tiers {
		if rs := h.readTopic(tier.Topic, 1, 200*time.Millisecond); len(rs) != 0 {
			t.Errorf("a permanent failure went through %s", tier.Name)
		}
	}
}

func TestPerKeyOrderHoldsForAHealthyEndpoint(t *testing.T) {
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil)
	h.addEndpoint("ordered", rc, time.Second)
	const n, keys = 1000, 50
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, eventRecord(t, h, fmt.Sprintf("evt-%d", i), "ordered", fmt.Sprint("key-", i%keys), i))
	}
	if err := h.env.Client.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "1000 deliveries", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == n
	})
	hits, _, _ := rc.snapshot()
	last := make(map[int]int)
	for _, hi := range hits {
		i, _ := strconv.Atoi(hi.id[len("evt-"):])
		key := i % keys
		if prev, ok := last[key]; ok && i < prev {
			t.Fatalf("key-%d: evt-%d delivered after evt-%d", key, i, prev)
		}
		last[key] = i
	}
}
