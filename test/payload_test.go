package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/dlq"
)

// payloads are producer payloads that a JSON re-encoder would change:
// HTML characters and U+2028/U+2029 (escaped by encoding/json), escapes
// that decode to the same text, whitespace, key order and number spelling.
var payloads = []string{
	`{"html":"<a href=\"x\">&amp;</a>","cmp":"1 < 2 && 3 > 2"}`,
	"{\"sep\":\"line\u2028para\u2029end\"}",
	`{"escaped":"caf\u00e9 \u2028 \/ \ud83d\ude00"}`,
	"{ \"z\" : 1 ,\n\t\"a\" : [ 1 , 2 ] ,\r\n  \"m\": { } }",
	`{"b":2,"a":1,"b2":[true,false,null]}`,
	`[1.0, 1e3, -0, 12345678901234567890123, 0.1E-2]`,
	`"just a string with <html> & more"`,
}

// dataOf returns the "data" member of a webhook body exactly as sent.
func dataOf(t *testing.T, body []byte) string {
	t.Helper()
	var b struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("webhook body is not JSON: %v: %s", err, body)
	}
	return string(b.Data)
}

// rawEvent is an event as JSON text with payload spliced in unchanged.
func rawEvent(id, address, payload string) string {
	return fmt.Sprintf(`{"id":%q,"type":"payload.test",%s,"payload":%s}`, id, address, payload)
}

func (h *harness) postRaw(path, body string) {
	h.t.Helper()
	resp, err := http.Post(h.api+path, "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("POST %s: %s: %s", path, resp.Status, data)
	}
}

// TestPayloadBytesReachTheEndpointUnchanged sends payloads that a JSON
// re-encoder would rewrite through every path into hookline (the ingest
// API, single and batch, and straight to Kafka), through a retry tier, and
// through the DLQ and a replay (also of a tenant event, which the replay
// re-addresses), and checks that every request the endpoint got carries the
// payload bytes exactly as the producer wrote them.
func TestPayloadBytesReachTheEndpointUnchanged(t *testing.T) {
	h := dlqHarness(t) // two attempts: events, retry.30s, then the DLQ
	// Each event fails its first attempt, so it goes through a retry tier.
	flaky := newReceiver(t, func(_ string, attempt int) int {
		if attempt == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	h.addEndpoint("flaky", flaky, 2*time.Second)
	deadRC := newReceiver(t, dead)
	h.dlqPut("dead", "acme", deadRC)

	want := map[string]string{} // event id -> payload
	var batch []string
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.env.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, p := range payloads {
		api, inBatch, direct := fmt.Sprintf("api-%d", i), fmt.Sprintf("batch-%d", i), fmt.Sprintf("kafka-%d", i)
		want[api], want[inBatch], want[direct] = p, p, p
		h.postRaw("/v1/events", rawEvent(api, `"endpoint_id":"flaky"`, p))
		batch = append(batch, rawEvent(inBatch, `"endpoint_id":"flaky"`, p))
		value := fmt.Sprintf(`{"v":1,"id":%q,"type":"payload.test","endpoint_id":"flaky","payload":%s,"created_at":"2026-12-01T10:00:00Z"}`, direct, p)
		rec := &kgo.Record{Topic: h.env.Topics.Events, Key: []byte("k"), Value: []byte(value)}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// To the DLQ and back: one straight to the endpoint, one fanned out.
		dead, tenant := fmt.Sprintf("dlq-%d", i), fmt.Sprintf("dlq-tenant-%d", i)
		want[dead], want[tenant] = p, p
		h.postRaw("/v1/events", rawEvent(dead, `"endpoint_id":"dead"`, p))
		h.postRaw("/v1/events", rawEvent(tenant, `"tenant":"acme"`, p))
	}
	h.postRaw("/v1/events/batch", `{"events":[`+strings.Join(batch, ",")+`]}`)

	h.dlqEntries(2 * len(payloads))
	ok := newReceiver(t, nil)
	h.dlqRepair("dead", ok)
	res, err := h.dlqClient().Replay(t.Context(), dlq.ReplayOptions{ID: "payload-bytes", Operator: "tester"})
	if err != nil || res.Sent != int64(2*len(payloads)) {
		t.Fatalf("replay = %+v, %v; want %d sent", res, err, 2*len(payloads))
	}

	// Delivered means answered 2xx: the flaky endpoint's first answer to
	// each event is a 503, so a request alone is not enough to stop on.
	waitFor(t, 60*time.Second, "every event delivered", func() bool {
		for id := range want {
			if !deliveredTo(flaky, id) && !deliveredTo(ok, id) {
				return false
			}
		}
		return true
	})
	checked := map[string]int{}
	for name, rc := range map[string]*receiver{"flaky": flaky, "dead": deadRC, "repaired": ok} {
		hits, _, bad := rc.snapshot()
		if bad != 0 {
			t.Errorf("%s: %d requests failed signature verification", name, bad)
		}
		for _, hit := range hits {
			p, known := want[hit.id]
			if !known {
				t.Errorf("%s got unknown event %s", name, hit.id)
				continue
			}
			checked[hit.id]++
			if got := dataOf(t, hit.body); got != p {
				t.Errorf("%s: event %s arrived with payload\n%q\nwant the bytes sent\n%q", name, hit.id, got, p)
			}
			if !bytes.Contains(hit.body, []byte(p)) {
				t.Errorf("%s: body of %s does not hold the payload bytes", name, hit.id)
			}
		}
	}
	for id := range want {
		// Each event: a failed and a successful attempt, or two failed
		// attempts and the replay's.
		if checked[id] < 2 {
			t.Errorf("event %s: %d requests checked, want at least 2", id, checked[id])
		}
	}
	t.Logf("payloads: %d, events: %d, requests checked: %d", len(payloads), len(want), sum(checked))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
