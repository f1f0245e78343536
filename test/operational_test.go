package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/operational"
)

// operationalEvents reads the operational topic until cond holds for what
// arrived, or fails the test.
func (h *harness) operationalEvents(within time.Duration, what string, cond func([]operational.Event) bool) []operational.Event {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.env.Brokers...), kgo.ConsumeTopics(h.env.Topics.Operational),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var evs []operational.Event
	for !cond(evs) {
		if ctx.Err() != nil {
			h.t.Fatalf("timed out after %v waiting for %s; got %+v", within, what, evs)
		}
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			ev, err := operational.Decode(r.Value)
			if err != nil {
				h.t.Errorf("operational record at offset %d: %v", r.Offset, err)
				return
			}
			evs = append(evs, ev)
		})
	}
	return evs
}

func find(evs []operational.Event, typ operational.Type, endpointID string) (operational.Event, bool) {
	for _, ev := range evs {
		if ev.Type == typ && ev.Data.EndpointID == endpointID {
			return ev, true
		}
	}
	return operational.Event{}, false
}

// An endpoint that fails for its (shortened) disable_after without a
// success is disabled. endpoint.failing and endpoint.disabled are written
// to the operational topic and POSTed to the operator webhook, whose
// signature verifies with the Standard Webhooks library. The API enables
// the endpoint again.
func TestAutoDisableEmitsEndpointDisabledToTopicAndOperatorWebhook(t *testing.T) {
	operator := newReceiver(t, nil)
	cfg := testConfig(t)
	cfg.OperatorWebhook, cfg.OperatorWebhookSecret = operator.url, operator.secret
	cfg.FailingAfter = 2
	h := start(t, cfg)
	failing := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	ctx := context.Background()
	if err := h.env.Registry.Put(ctx, endpoints.Endpoint{ID: "flaky", URL: failing.url, Secrets: []string{failing.secret}, Enabled: true, DisableAfter: "500ms"}); err != nil {
		t.Fatal(err)
	}
	h.send("evt-1", "flaky", "k", map[string]int{"n": 1})

	evs := h.operationalEvents(60*time.Second, "endpoint.disabled on the operational topic", func(evs []operational.Event) bool {
		_, ok := find(evs, operational.EndpointDisabled, "flaky")
		return ok
	})
	disabled, _ := find(evs, operational.EndpointDisabled, "flaky")
	if disabled.Data.Cause != operational.CauseDisableAfter || !strings.Contains(disabled.Data.Reason, "without a success") || disabled.Version != operational.Version {
		t.Errorf("endpoint.disabled = %+v, want cause %s and a reason", disabled, operational.CauseDisableAfter)
	}
	if disabled.Data.FailingSince == nil || disabled.Timestamp.Sub(*disabled.Data.FailingSince) < 500*time.Millisecond {
		t.Errorf("disabled at %v, failing since %v: before its disable_after of 500ms", disabled.Timestamp, disabled.Data.FailingSince)
	}
	if f, ok := find(evs, operational.EndpointFailing, "flaky"); !ok || f.Data.Cause != operational.CauseConsecutiveFailures {
		t.Errorf("no endpoint.failing for 2 failures in a row before the disable: %+v", evs)
	}
	ep, _ := h.env.Registry.Get("flaky")
	if ep.Enabled || ep.DisabledReason == "" {
		t.Fatalf("endpoint after auto-disable: enabled=%v reason=%q", ep.Enabled, ep.DisabledReason)
	}

	var got map[string]any
	waitFor(t, 30*time.Second, "endpoint.disabled at the operator webhook", func() bool {
		hits, _, _ := operator.snapshot()
		for _, hit := range hits {
			var ev operational.Event
			if json.Unmarshal(hit.body, &ev) == nil && ev.Type == operational.EndpointDisabled && ev.Data.EndpointID == "flaky" {
				// The receiver verified it already; verify again here, on
				// what arrived, so the property is in this test.
				if err := operator.wh.Verify(hit.body, hit.header); err != nil {
					t.Fatalf("operator webhook signature: %v", err)
				}
				if hit.header.Get("webhook-id") != ev.ID {
					t.Errorf("webhook-id %q, want the event id %q", hit.header.Get("webhook-id"), ev.ID)
				}
				_ = json.Unmarshal(hit.body, &got)
				return true
			}
		}
		return false
	})
	if _, _, bad := operator.snapshot(); bad > 0 {
		t.Errorf("%d operator webhook requests failed verification", bad)
	}
	if got["type"] != "endpoint.disabled" || got["data"].(map[string]any)["endpoint_id"] != "flaky" {
		t.Errorf("operator webhook body %v", got)
	}

	// Re-enabled through the API.
	req, _ := http.NewRequest(http.MethodPatch, h.api+"/v1/endpoints/flaky", bytes.NewReader([]byte(`{"enabled":true}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if ep, _ := h.env.Registry.Get("flaky"); resp.StatusCode != http.StatusOK || !ep.Enabled || ep.DisabledReason != "" {
		t.Fatalf("re-enable: %s, enabled=%v reason=%q", resp.Status, ep.Enabled, ep.DisabledReason)
	}
}

// A 410 disables its endpoint and emits endpoint.disabled; every pair
// dead-lettered (the 410's, a permanent 400's) emits
// message.attempt.exhausted.
func TestGoneAndDeadLetteredPairsEmitOperationalEvents(t *testing.T) {
	h := start(t, testConfig(t))
	gone := newReceiver(t, func(string, int) int { return http.StatusGone })
	bad := newReceiver(t, func(string, int) int { return http.StatusBadRequest })
	h.addEndpoint("gone", gone, 5*time.Second)
	h.addEndpoint("bad", bad, 5*time.Second)
	h.send("evt-gone", "gone", "k1", map[string]int{"n": 1})
	h.send("evt-bad", "bad", "k2", map[string]int{"n": 2})

	evs := h.operationalEvents(60*time.Second, "endpoint.disabled and two message.attempt.exhausted", func(evs []operational.Event) bool {
		_, d := find(evs, operational.EndpointDisabled, "gone")
		_, g := find(evs, operational.AttemptExhausted, "gone")
		_, b := find(evs, operational.AttemptExhausted, "bad")
		return d && g && b
	})
	d, _ := find(evs, operational.EndpointDisabled, "gone")
	if d.Data.Cause != operational.CauseGone || !strings.Contains(d.Data.Reason, "410") {
		t.Errorf("endpoint.disabled = %+v, want cause %s naming the 410", d.Data, operational.CauseGone)
	}
	for _, tc := range []struct{ endpoint, event string }{{"gone", "evt-gone"}, {"bad", "evt-bad"}} {
		ex, _ := find(evs, operational.AttemptExhausted, tc.endpoint)
		if ex.Data.EventID != tc.event || ex.Data.Attempts != 1 || ex.Data.Reason == "" {
			t.Errorf("message.attempt.exhausted for %s = %+v, want event %s after 1 attempt with the DLQ reason", tc.endpoint, ex.Data, tc.event)
		}
	}
	if ep, _ := h.env.Registry.Get("gone"); ep.Enabled {
		t.Error("the endpoint that answered 410 is still enabled")
	}
	if dlq := h.readTopic(h.env.Topics.DLQ, 2, 30*time.Second); len(dlq) != 2 {
		t.Errorf("%d records in the DLQ, want the 2 pairs the events are about", len(dlq))
	}
}

// A finished DLQ replay emits dlq.replay.finished with its counts, in the
// transaction that records its end in the audit trail.
func TestDLQReplayEmitsReplayFinished(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("a", "acme", newReceiver(t, dead))
	for i := range 3 {
		h.send(fmt.Sprintf("a-%d", i), "a", fmt.Sprint("k", i), map[string]int{"n": i})
	}
	h.dlqEntries(3)
	h.dlqRepair("a", newReceiver(t, nil))
	res, err := h.dlqClient().Replay(t.Context(), dlq.ReplayOptions{ID: "ops", Operator: "tester", Filter: dlq.Filter{Endpoints: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	evs := h.operationalEvents(30*time.Second, "dlq.replay.finished", func(evs []operational.Event) bool {
		for _, ev := range evs {
			if ev.Type == operational.ReplayFinished {
				return true
			}
		}
		return false
	})
	for _, ev := range evs {
		if ev.Type == operational.ReplayFinished && (ev.Data.ReplayID != "ops" || ev.Data.Replayed != res.Sent || ev.Data.Outcome != string(dlq.OutcomeCompleted)) {
			t.Errorf("dlq.replay.finished = %+v, want replay ops, %d replayed, completed", ev.Data, res.Sent)
		}
	}
}

// An endpoint that fails failing_after times in a row and then succeeds
// emits endpoint.failing, then endpoint.recovered. The operator webhook
// answers 503 twice: each event is POSTed again until it answers 2xx, with
// the same webhook-id, and arrives.
func TestFailingRecoveredReachAnOperatorWebhookThatFailsAtFirst(t *testing.T) {
	operator := newReceiver(t, func(_ string, attempt int) int {
		if attempt <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := testConfig(t)
	cfg.OperatorWebhook, cfg.OperatorWebhookSecret = operator.url, operator.secret
	cfg.FailingAfter = 2
	h := start(t, cfg)
	rc := newReceiver(t, func(_ string, attempt int) int {
		if attempt <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h.addEndpoint("wobbly", rc, 5*time.Second)
	h.send("evt-w", "wobbly", "k", map[string]int{"n": 1})

	evs := h.operationalEvents(60*time.Second, "endpoint.failing and endpoint.recovered", func(evs []operational.Event) bool {
		_, f := find(evs, operational.EndpointFailing, "wobbly")
		_, r := find(evs, operational.EndpointRecovered, "wobbly")
		return f && r
	})
	var order []operational.Type
	for _, ev := range evs {
		order = append(order, ev.Type)
	}
	if len(order) != 2 || order[0] != operational.EndpointFailing || order[1] != operational.EndpointRecovered {
		t.Errorf("operational events %v, want endpoint.failing then endpoint.recovered", order)
	}
	waitFor(t, 60*time.Second, "both events answered 2xx by the operator webhook", func() bool {
		operator.mu.Lock()
		defer operator.mu.Unlock()
		return len(operator.ok) == 2
	})
	_, counts, bad := operator.snapshot()
	if bad > 0 {
		t.Errorf("%d operator webhook requests failed verification", bad)
	}
	for _, ev := range evs {
		if counts[ev.ID] != 3 {
			t.Errorf("%s (%s) was POSTed %d times with its webhook-id, want 3: two 503s, then the 2xx", ev.Type, ev.ID, counts[ev.ID])
		}
	}
}
