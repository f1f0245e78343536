package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

// dlqHarness starts a pipeline that dead-letters after two attempts, so a
// dead endpoint fills the DLQ within a second.
func dlqHarness(t *testing.T) *harness {
	cfg := testConfig(t)
	cfg.MaxAttempts = 2
	return start(t, cfg)
}

func (h *harness) dlqClient() *dlq.Client {
	h.t.Helper()
	c, err := dlq.New(dlq.Config{
		Brokers: h.env.Brokers,
		Topics:  h.env.Topics,
		TenantOf: func(id string) string {
			e, _ := h.env.Registry.Get(id)
			return e.Tenant
		},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

// dlqPut registers an endpoint of tenant at rc.
func (h *harness) dlqPut(id, tenant string, rc *receiver) {
	h.t.Helper()
	e := endpoints.Endpoint{ID: id, URL: rc.url, Tenant: tenant, Secrets: []string{rc.secret}, Enabled: true, TimeoutMS: 1000}
	if err := h.env.Registry.Put(context.Background(), e); err != nil {
		h.t.Fatal(err)
	}
}

// dlqRepair points endpoint id at the healthy receiver rc.
func (h *harness) dlqRepair(id string, rc *receiver) {
	h.t.Helper()
	err := h.env.Registry.Update(context.Background(), id, func(e *endpoints.Endpoint) error {
		e.URL, e.Secrets = rc.url, []string{rc.secret}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, 10*time.Second, "registry sees the repair", func() bool {
		e, _ := h.env.Registry.Get(id)
		return e.URL == rc.url
	})
}

// dlqSendTenant posts a fan-out event to every endpoint of tenant.
func (h *harness) dlqSendTenant(id, tenant string) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"id": id, "type": "test.event", "tenant": tenant, "payload": map[string]string{"id": id}})
	resp, err := http.Post(h.api+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("POST /v1/events: %s", resp.Status)
	}
}

// dlqEntries waits until the DLQ holds want records and returns them.
func (h *harness) dlqEntries(want int) []*dlq.Entry {
	h.t.Helper()
	recs := h.readTopic(h.env.Topics.DLQ, want, 60*time.Second)
	if len(recs) != want {
		h.t.Fatalf("%d records in the DLQ, want %d", len(recs), want)
	}
	out := make([]*dlq.Entry, len(recs))
	for i, r := range recs {
		out[i] = dlq.NewEntry(r)
	}
	return out
}

// dlqReplayed reads the records of replay id in topic, as of now, by
// event id.
func (h *harness) dlqReplayed(topic, id string) map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, r := range readTopic(h.t, h.env.Brokers, topic, 1<<30, 3*time.Second) {
		e := dlq.NewEntry(r)
		if e.ReplayID == id {
			out[e.EventID]++
		}
	}
	return out
}

func dead(string, int) int { return http.StatusInternalServerError }

func TestDLQReplayWithFilterDeliversExactlyTheMatchingEventsOnce(t *testing.T) {
	h := dlqHarness(t)
	deadA, deadB, shop := newReceiver(t, dead), newReceiver(t, dead), newReceiver(t, nil)
	h.dlqPut("a", "acme", deadA)
	h.dlqPut("b", "acme", deadB)
	h.dlqPut("shop", "acme", shop)
	const n = 15
	for i := range n {
		h.send(fmt.Sprintf("a-%d", i), "a", fmt.Sprint("k", i), map[string]int{"n": i})
		h.send(fmt.Sprintf("b-%d", i), "b", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	// A tenant event fans out to a, b and shop: shop gets it now, a and b
	// dead-letter it once each.
	h.dlqSendTenant("fan-1", "acme")
	before := h.dlqEntries(2*n + 2)
	waitFor(t, 10*time.Second, "shop receives the fan-out event", func() bool {
		_, counts, _ := shop.snapshot()
		return counts["fan-1"] == 1
	})

	okA, okB := newReceiver(t, nil), newReceiver(t, nil)
	h.dlqRepair("a", okA)
	h.dlqRepair("b", okB)
	d := h.dlqClient()
	f := dlq.Filter{Endpoints: []string{"a"}}

	// A dry run sends nothing and records nothing.
	var shown int
	res, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "dry", Operator: "tester", Filter: f, DryRun: true, OnMatch: func(*dlq.Entry) { shown++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != n+1 || shown != n+1 {
		t.Fatalf("dry run matched %d, showed %d, want %d", res.Matched, shown, n+1)
	}

	res, err = d.Replay(t.Context(), dlq.ReplayOptions{ID: "fix-a", Operator: "tester", Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != n+1 || res.Outcome != dlq.OutcomeCompleted || res.Topic != h.env.Topics.Events {
		t.Fatalf("replay = %+v, want %d sent to %s, completed", res, n+1, h.env.Topics.Events)
	}
	waitFor(t, 30*time.Second, "a's events delivered", func() bool {
		_, counts, _ := okA.snapshot()
		return len(counts) == n+1
	})
	// One attempt record per replayed pair, then judge duplicates.
	delivered := 0
	waitFor(t, 30*time.Second, "attempt records of the replay", func() bool {
		delivered = 0
		for _, a := range h.attempts(1<<30, 2*time.Second) {
			if a.EndpointID == "a" && a.Outcome == processors.OutcomeDelivered {
				delivered++
			}
		}
		return delivered >= n+1
	})
	_, counts, bad := okA.snapshot()
	for i := range n {
		if c := counts[fmt.Sprintf("a-%d", i)]; c != 1 {
			t.Errorf("a-%d delivered %d times, want once", i, c)
		}
	}
	if counts["fan-1"] != 1 || bad != 0 {
		t.Errorf("fan-1 delivered %d times to a, want once; %d bad signatures", counts["fan-1"], bad)
	}
	// The rest stay: b and the fan-out's healthy endpoint get nothing.
	if hits, _, _ := okB.snapshot(); len(hits) != 0 {
		t.Errorf("b, not replayed, received %d requests", len(hits))
	}
	if _, counts, _ := shop.snapshot(); counts["fan-1"] != 1 {
		t.Errorf("shop received fan-1 %d times, want once (the replay must address a alone)", counts["fan-1"])
	}
	var left int
	err = d.Scan(t.Context(), dlq.Filter{}, func(e *dlq.Entry) error {
		left++
		return nil
	})
	if err != nil || left != len(before) {
		t.Errorf("DLQ holds %d records after the replay (%v), want the %d it had", left, err, len(before))
	}

	// Every replayed record keeps its event id and says it is a replay.
	byEvent := h.dlqReplayed(h.env.Topics.Events, "fix-a")
	if len(byEvent) != n+1 {
		t.Errorf("events topic holds %d replayed events, want %d", len(byEvent), n+1)
	}
	for id, c := range byEvent {
		if c != 1 {
			t.Errorf("event %s replayed %d times", id, c)
		}
	}
	if len(h.dlqReplayed(h.env.Topics.Events, "dry")) != 0 {
		t.Error("the dry run sent records")
	}

	// The audit trail has the replay, not the dry run.
	rs, err := d.Replays(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Latest.ReplayID != "fix-a" || rs[0].Latest.Outcome != dlq.OutcomeCompleted ||
		rs[0].Latest.Sent != n+1 || rs[0].Latest.Operator != "tester" || !rs[0].Latest.Filter.Equal(f) {
		t.Errorf("replays = %+v, want fix-a by tester, completed, %d sent", rs, n+1)
	}

	// Run again, it sends nothing.
	res, err = d.Replay(t.Context(), dlq.ReplayOptions{ID: "fix-a", Operator: "tester"})
	if err != nil || !res.AlreadyCompleted {
		t.Errorf("second run of a completed replay = %+v, %v; want already completed", res, err)
	}
	if got := h.dlqReplayed(h.env.Topics.Events, "fix-a"); len(got) != n+1 {
		t.Errorf("after the second run, %d replayed events, want %d", len(got), n+1)
	}
}

func TestDLQReplayInterruptedAndResumedSendsNothingTwice(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("c", "", newReceiver(t, dead))
	const n = 60
	for i := range n {
		h.send(fmt.Sprintf("c-%d", i), "c", fmt.Sprint("k", i%7), map[string]int{"n": i})
	}
	h.dlqEntries(n)
	ok := newReceiver(t, nil)
	h.dlqRepair("c", ok)
	d := h.dlqClient()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const k = 25
	res, err := d.Replay(ctx, dlq.ReplayOptions{
		ID: "resume-me", Operator: "tester", BatchSize: 7,
		Progress: func(p dlq.Progress) {
			if p.Sent >= k {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %+v, %v; want context.Canceled", res, err)
	}
	if res.Sent >= k || res.Sent == 0 {
		t.Fatalf("interrupted replay committed %d, want some but fewer than %d: the open transaction must abort", res.Sent, k)
	}
	rs, err := d.Replays(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Latest.Outcome != dlq.OutcomeInterrupted {
		t.Fatalf("replays after the interruption = %+v, %v; want resume-me interrupted", rs, err)
	}

	res, err = d.Replay(t.Context(), dlq.ReplayOptions{ID: "resume-me", Operator: "tester2"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Sent != n || res.Outcome != dlq.OutcomeCompleted {
		t.Fatalf("resumed replay = %+v, want resumed, %d sent in all, completed", res, n)
	}
	byEvent := h.dlqReplayed(h.env.Topics.Events, "resume-me")
	if len(byEvent) != n {
		t.Errorf("%d events replayed, want %d", len(byEvent), n)
	}
	for id, c := range byEvent {
		if c != 1 {
			t.Errorf("event %s replayed %d times, want once", id, c)
		}
	}
	waitFor(t, 30*time.Second, "every replayed event delivered", func() bool {
		_, counts, _ := ok.snapshot()
		return len(counts) == n
	})
	h.attempts(2*n+n, 30*time.Second) // the dead attempts, then the replay's
	_, counts, _ := ok.snapshot()
	for id, c := range counts {
		if c != 1 {
			t.Errorf("%s delivered %d times, want once", id, c)
		}
	}
}

func TestDLQReplayRateLimitHoldsAndFailuresReturnToTheDLQ(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("d", "", newReceiver(t, dead))
	const n = 61
	for i := range n {
		h.send(fmt.Sprintf("d-%d", i), "d", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	h.dlqEntries(n)
	d := h.dlqClient()
	const rate = 15.0
	start := time.Now()
	res, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "slow", Operator: "tester", Rate: rate})
	took := time.Since(start)
	if err != nil || res.Sent != n {
		t.Fatalf("replay = %+v, %v; want %d sent", res, err, n)
	}
	// The producer stamps each record when it is sent.
	var first, last time.Time
	count := 0
	for _, r := range readTopic(t, h.env.Brokers, h.env.Topics.Events, 1<<30, 3*time.Second) {
		if dlq.NewEntry(r).ReplayID != "slow" {
			continue
		}
		count++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if r.Timestamp.After(last) {
			last = r.Timestamp
		}
	}
	span := last.Sub(first)
	if count != n || span < 3*time.Second {
		t.Fatalf("%d replayed records over %v, want %d over at least 3s", count, span, n)
	}
	// Never faster than the limit. How close to it a loaded machine gets
	// is a speed figure, reported only (the pacer's own test checks its
	// schedule on a fake clock).
	got := float64(n-1) / span.Seconds()
	if got > rate*1.1 {
		t.Errorf("replayed at %.2f records/s, faster than the limit of %.0f", got, rate)
	}
	t.Logf("%d records at %.2f/s (limit %.0f); the replay took %v", n, got, rate, took)

	// The endpoint is still dead: every replayed pair fails again and
	// goes back to the DLQ, marked with the replay, with a fresh count.
	again := 0
	for _, e := range h.dlqEntries(2 * n) {
		if e.ReplayID == "slow" {
			again++
			if e.State.Attempts != h.cfg.MaxAttempts {
				t.Errorf("%s back in the DLQ after %d attempts, want %d (the count restarts)", e.EventID, e.State.Attempts, h.cfg.MaxAttempts)
			}
		}
	}
	if again != n {
		t.Errorf("%d replayed pairs back in the DLQ, want %d", again, n)
	}
}

func TestDLQReplayToTheFirstRetryTierRestartsTheAttempts(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("e", "", newReceiver(t, dead))
	const n = 10
	for i := range n {
		h.send(fmt.Sprintf("e-%d", i), "e", "k", map[string]int{"n": i})
	}
	h.dlqEntries(n)
	ok := newReceiver(t, nil)
	h.dlqRepair("e", ok)
	d := h.dlqClient()
	res, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "to-retry", Operator: "tester", Target: dlq.TargetRetry})
	if err != nil || res.Sent != n || res.Topic != h.env.Topics.Tiers[0].Topic {
		t.Fatalf("replay = %+v, %v; want %d sent to %s", res, err, n, h.env.Topics.Tiers[0].Topic)
	}
	waitFor(t, 30*time.Second, "every event delivered", func() bool {
		_, counts, _ := ok.snapshot()
		return len(counts) == n
	})
	var replayed int
	for _, a := range h.attempts(2*n+n, 30*time.Second) {
		if a.Outcome != processors.OutcomeDelivered {
			continue
		}
		replayed++
		if a.Tier != h.env.Topics.Tiers[0].Name || a.Attempt != 1 {
			t.Errorf("%s delivered by %s as attempt %d, want %s attempt 1", a.EventID, a.Tier, a.Attempt, h.env.Topics.Tiers[0].Name)
		}
	}
	if replayed != n {
		t.Errorf("%d delivered attempts, want %d", replayed, n)
	}
}

func TestDLQBadInputSendsNothing(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("f", "", newReceiver(t, dead))
	h.send("f-1", "f", "k", map[string]int{"n": 1})
	h.dlqEntries(1)
	d := h.dlqClient()
	ctx := t.Context()

	if _, err := d.Find(ctx, "no-such-event"); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Find(unknown event) = %v, want ErrNotFound", err)
	}
	if _, err := d.Find(ctx, "0:999999"); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Find(offset past the end) = %v, want ErrNotFound", err)
	}
	if es, err := d.Find(ctx, "f-1"); err != nil || len(es) != 1 || es[0].Endpoint() != "f" {
		t.Errorf("Find(f-1) = %v, %v; want its one record", es, err)
	}

	bad := []dlq.ReplayOptions{
		{Operator: "tester", Filter: dlq.Filter{ErrorClasses: []string{"http_5xxx"}}},
		{Operator: "tester", Filter: dlq.Filter{Statuses: []string{"700"}}},
		{Operator: "tester", Filter: dlq.Filter{MinAttempts: -1}},
		{Operator: "tester", Target: "elsewhere"},
		{Operator: "tester", Rate: -1},
		{Operator: ""},
		{Operator: "tester", ID: "has spaces"},
	}
	for _, o := range bad {
		if _, err := d.Replay(ctx, o); err == nil {
			t.Errorf("Replay(%+v) succeeded, want an error", o)
		}
	}

	// Resuming with other filters is refused.
	if _, err := d.Replay(ctx, dlq.ReplayOptions{ID: "once", Operator: "tester", Filter: dlq.Filter{Endpoints: []string{"nobody"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Replay(ctx, dlq.ReplayOptions{ID: "once", Operator: "tester", Filter: dlq.Filter{Endpoints: []string{"f"}}})
	if !errors.Is(err, dlq.ErrReplayMismatch) {
		t.Errorf("resume with other filters = %v, want ErrReplayMismatch", err)
	}
	for _, r := range readTopic(t, h.env.Brokers, h.env.Topics.Events, 1<<30, 2*time.Second) {
		if e := dlq.NewEntry(r); e.ReplayID != "" {
			t.Errorf("bad input sent %s (replay %s)", e.EventID, e.ReplayID)
		}
	}
}

// A run that stops dead mid-transaction, as a killed process does, is
// fenced by the next run of the same replay: its open transaction is
// aborted, the next run resumes from the last commit, and the old run can
// commit nothing after that.
func TestDLQReplayStuckMidTransactionIsFencedAndEachEventSentOnce(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("g", "", newReceiver(t, dead))
	const n = 30
	for i := range n {
		h.send(fmt.Sprintf("g-%d", i), "g", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	h.dlqEntries(n)
	ok := newReceiver(t, nil)
	h.dlqRepair("g", ok)
	d := h.dlqClient()

	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := d.Replay(context.Background(), dlq.ReplayOptions{
			ID: "zombie", Operator: "first", BatchSize: 1000, CommitInterval: time.Minute,
			Progress: func(p dlq.Progress) {
				if p.Sent >= 10 {
					once.Do(func() { close(stuck) })
					<-release
				}
			},
		})
		errc <- err
	}()
	<-stuck
	res, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "zombie", Operator: "second"})
	if err != nil || !res.Resumed || res.Sent != n {
		t.Fatalf("second run = %+v, %v; want it to resume and send all %d", res, err, n)
	}
	close(release)
	if err := <-errc; err == nil {
		t.Error("the fenced run succeeded")
	} else {
		t.Logf("fenced run: %v", err)
	}
	byEvent := h.dlqReplayed(h.env.Topics.Events, "zombie")
	if len(byEvent) != n {
		t.Errorf("%d events replayed, want %d", len(byEvent), n)
	}
	for id, c := range byEvent {
		if c != 1 {
			t.Errorf("event %s replayed %d times, want once", id, c)
		}
	}
	rs, err := d.Replays(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Latest.Outcome != dlq.OutcomeCompleted || rs[0].Latest.Sent != n {
		t.Errorf("replays = %+v, %v; want zombie completed with %d sent", rs, err, n)
	}
}
