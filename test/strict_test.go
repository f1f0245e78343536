package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

// strictReceiver answers like a strict endpoint's receiver in the
// acceptance tests: an event fails (503) while fail says, everything else
// succeeds. It records, as the receiver sees them, the order of first
// successful deliveries, and every request for event X-n (n > 1) made
// before X-1 was delivered, unless released(X) says X-1 was let go.
type strictReceiver struct {
	*receiver
	mu       sync.Mutex
	fail     func(id string, attempt int) bool
	released func(key string) bool
	okAt     []string // first 2xx per id, in order
	seen     map[string]bool
	early    []string
}

func newStrictReceiver(t *testing.T, fail func(id string, attempt int) bool, released func(key string) bool) *strictReceiver {
	sr := &strictReceiver{fail: fail, released: released, seen: make(map[string]bool)}
	sr.receiver = newReceiver(t, func(id string, attempt int) int {
		key, n, _ := strings.Cut(id, "-")
		let := released(key)
		failed := fail(id, attempt)
		sr.mu.Lock()
		defer sr.mu.Unlock()
		if n != "1" && !sr.seen[key+"-1"] && !let {
			sr.early = append(sr.early, id)
		}
		if failed {
			return http.StatusServiceUnavailable
		}
		if !sr.seen[id] {
			sr.seen[id] = true
			sr.okAt = append(sr.okAt, id)
		}
		return http.StatusOK
	})
	return sr
}

func (sr *strictReceiver) delivered(prefix string) []string {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	var out []string
	for _, id := range sr.okAt {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

func (sr *strictReceiver) deliveredAll(ids ...string) bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	for _, id := range ids {
		if !sr.seen[id] {
			return false
		}
	}
	return true
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// checkStrictOrder fails unless K's events reached the receiver in order,
// none of K's later events was requested before K-1 was delivered, and J's
// events all were (J flowed while K was held).
func checkStrictOrder(t *testing.T, sr *strictReceiver, k, j []string) {
	t.Helper()
	if got := sr.delivered("K-"); !slices.Equal(got, k) {
		t.Errorf("K's events delivered in the order %v, want %v", got, k)
	}
	sr.mu.Lock()
	early := sr.early
	sr.mu.Unlock()
	if len(early) > 0 {
		t.Errorf("later events were attempted before the first of their key was delivered or released: %v", early)
	}
	if got := sr.delivered("J-"); !slices.Equal(got, j) {
		t.Errorf("J's events delivered in the order %v, want %v", got, j)
	}
}

// A strict endpoint fails event 1 of key K for its first 3 attempts (and
// until every event of key J on the same partition has been delivered, so
// that J must flow while K is held, or K-1 is never delivered). Events 2–20
// of K reach it only after event 1, in order.
func TestStrictEndpointHoldsAFailingKeyAndLetsOthersFlow(t *testing.T) {
	cfg := testConfig(t)
	cfg.Partitions = 1 // K and J on one partition
	h := start(t, cfg)
	js := seq("J-", 1, 20)
	var (
		sr      *strictReceiver
		checked atomic.Bool // the held key has been seen through the API and the metrics
	)
	sr = newStrictReceiver(t, func(id string, attempt int) bool {
		return id == "K-1" && (attempt <= 3 || !sr.deliveredAll(js...) || !checked.Load())
	}, func(string) bool { return false })

	// Through the API, as a user would; a wrong value names its field.
	post := func(v any) (int, []byte) {
		body, _ := json.Marshal(v)
		resp, err := http.Post(h.api+"/v1/endpoints", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	for field, v := range map[string]map[string]any{
		"ordering":       {"ordering": "fifo"},
		"on_dead_letter": {"ordering": "strict", "on_dead_letter": "drop"},
	} {
		v["url"], v["secret"] = sr.url, sr.secret
		status, body := post(v)
		var e struct{ Field string }
		_ = json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || e.Field != field {
			t.Errorf("create endpoint with a bad %s: %d %s, want 400 naming %q", field, status, body, field)
		}
	}
	status, body := post(map[string]any{"id": "strict", "url": sr.url, "secret": sr.secret, "ordering": "strict", "on_dead_letter": "continue", "timeout_ms": 2000})
	if status != http.StatusCreated || !bytes.Contains(body, []byte(`"ordering":"strict"`)) {
		t.Fatalf("create strict endpoint: %d %s", status, body)
	}

	h.send("K-1", "strict", "K", 1)
	for i := 2; i <= 20; i++ {
		h.send(fmt.Sprintf("J-%d", i-1), "strict", "J", i-1)
		h.send(fmt.Sprintf("K-%d", i), "strict", "K", i)
	}
	h.send("J-20", "strict", "J", 20)
	ks := seq("K-", 1, 20)

	// While K is held, the API and the metrics show it.
	waitFor(t, 30*time.Second, "J delivered while K is held", func() bool { return sr.deliveredAll(js...) })
	type heldKey struct {
		OrderingKey string    `json:"ordering_key"`
		EventID     string    `json:"event_id"`
		Since       time.Time `json:"since"`
		Attempts    int       `json:"attempts"`
	}
	var held []heldKey
	waitFor(t, 10*time.Second, "GET /v1/endpoints/strict/held to show key K held by K-1 since a time", func() bool {
		resp, err := http.Get(h.api + "/v1/endpoints/strict/held")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct{ Held []heldKey }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		held = body.Held
		return len(held) == 1 && held[0].OrderingKey == "K" && held[0].EventID == "K-1" && held[0].Attempts >= 1 && !held[0].Since.IsZero()
	})
	metrics := h.metricsText
	waitFor(t, 10*time.Second, "hookline_held_keys 1 and hookline_held_events 20", func() bool {
		m := metrics()
		return strings.Contains(m, `hookline_held_keys{stage="strict"} 1`+"\n") && strings.Contains(m, `hookline_held_events{stage="strict"} 20`+"\n")
	})
	checked.Store(true)
	waitFor(t, 60*time.Second, "every event delivered", func() bool { return sr.deliveredAll(append(ks, js...)...) })
	checkStrictOrder(t, sr, ks, js)
	_, counts, bad := sr.snapshot()
	if counts["K-1"] < 4 || bad > 0 {
		t.Errorf("K-1 was requested %d times (want at least 4: 3 failures, then J's wait), %d bad signatures", counts["K-1"], bad)
	}
	// Nothing is left held.
	waitFor(t, 10*time.Second, "no key held", func() bool {
		m := metrics()
		return strings.Contains(m, `hookline_held_keys{stage="strict"} 0`+"\n") && strings.Contains(m, `hookline_held_events{stage="strict"} 0`+"\n")
	})
}

// The attempt numbers of an event, from its committed attempt records.
func attemptNumbers(t *testing.T, brokers []string, topic, eventID string) []int {
	t.Helper()
	seen := make(map[string]bool)
	var out []int
	for _, r := range readTopic(t, brokers, topic, 1<<30, 2*time.Second) {
		a, err := processors.DecodeAttempt(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if a.EventID == eventID && !seen[a.AttemptID] {
			seen[a.AttemptID] = true
			out = append(out, a.Attempt)
		}
	}
	slices.Sort(out)
	return out
}

// The same with `hookline serve` SIGKILLed while K is held: after its
// restart the hold is still there (K-1's attempts go on counting, and none
// of K's later events goes before it), order is kept and nothing is lost.
func TestStrictHoldSurvivesSIGKILL(t *testing.T) {
	dataDir := t.TempDir()
	kafka := testenv.FreeAddr(t)
	prefix := fmt.Sprintf("s%d.", time.Now().UnixNano()%1e6)
	// Tiers of 300ms, 1.2s, 6s, 36s: K-1 is still held long after a restart.
	proc := newServeProc(t, "--data-dir", dataDir, "--kafka-listen", kafka, "--instance-id", "strict-test",
		"--topic-prefix", prefix, "--partitions", "1", "--tier-scale", "0.01")
	brokers := []string{kafka}
	if b := testBrokers(t); b != nil {
		brokers = b
	}
	proc.start()
	var (
		mu       sync.Mutex
		released bool
	)
	sr := newStrictReceiver(t, func(id string, attempt int) bool {
		mu.Lock()
		defer mu.Unlock()
		return id == "K-1" && (attempt <= 3 || !released)
	}, func(string) bool { return false })
	status, body, err := proc.post("/v1/endpoints", map[string]any{"id": "strict", "url": sr.url, "secret": sr.secret, "ordering": "strict", "timeout_ms": 2000})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s %v", status, body, err)
	}
	send := func(id, key string) {
		t.Helper()
		status, body, err := proc.post("/v1/events", map[string]any{"id": id, "type": "test.event", "endpoint_id": "strict", "ordering_key": key, "payload": map[string]string{"id": id}})
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("send %s: %d %s %v", id, status, body, err)
		}
	}
	send("K-1", "K")
	for i := 2; i <= 20; i++ {
		send(fmt.Sprintf("J-%d", i-1), "J")
		send(fmt.Sprintf("K-%d", i), "K")
	}
	send("J-20", "J")
	// Kill once K-1's third failed attempt is committed, and J has flowed.
	attempts := prefix + "attempts"
	waitFor(t, 60*time.Second, "K-1's third attempt committed", func() bool {
		return len(attemptNumbers(t, brokers, attempts, "K-1")) >= 3
	})
	waitFor(t, 30*time.Second, "J delivered while K is held", func() bool { return sr.deliveredAll(seq("J-", 1, 20)...) })
	// hookline dlq held shows the key, since when.
	args := []string{"dlq", "held", "--json", "--topic-prefix", prefix, "--partitions", "1"}
	if b := testBrokers(t); b != nil {
		args = append(args, "--brokers", b[0])
	} else {
		args = append(args, "--kafka-listen", kafka)
	}
	out, err := exec.Command(hooklineBinary(t), args...).Output()
	var v struct {
		Endpoint string    `json:"endpoint"`
		Key      string    `json:"ordering_key"`
		EventID  string    `json:"event_id"`
		Since    time.Time `json:"since"`
		Attempts int       `json:"attempts"`
	}
	if err != nil || json.Unmarshal(out, &v) != nil || v.Endpoint != "strict" || v.Key != "K" || v.EventID != "K-1" || v.Since.IsZero() || v.Attempts < 3 {
		t.Errorf("hookline dlq held: %v: %s, want K held by K-1 since a time, after 3 attempts", err, out)
	}
	proc.kill()
	// K-1's next attempt, made by the restarted process, succeeds.
	mu.Lock()
	released = true
	mu.Unlock()
	proc.start()
	for i := 21; i <= 30; i++ {
		send(fmt.Sprintf("J-%d", i), "J")
		send(fmt.Sprintf("K-%d", i), "K")
	}
	ks, js := seq("K-", 1, 30), seq("J-", 1, 30)
	waitFor(t, 90*time.Second, "every event delivered", func() bool { return sr.deliveredAll(append(ks, js...)...) })
	checkStrictOrder(t, sr, ks, js)
	// The restart kept the hold: K-1 was not attempted afresh (a first
	// attempt again), its count went on past the kill.
	if got := attemptNumbers(t, brokers, attempts, "K-1"); len(got) < 4 || !slices.Equal(got, seq2(1, len(got))) {
		t.Errorf("K-1's committed attempt numbers are %v, want 1, 2, 3, 4... without a repeat", got)
	}
}

func seq2(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// hookline runs the CLI against the harness's broker.
func (h *harness) hookline(t *testing.T, args ...string) string {
	t.Helper()
	args = append(args, "--topic-prefix", h.cfg.TopicPrefix, "--partitions", fmt.Sprint(h.cfg.Partitions))
	if h.cfg.Embedded() {
		args = append(args, "--kafka-listen", h.env.Brokers[0])
	} else {
		args = append(args, "--brokers", strings.Join(h.env.Brokers, ","))
	}
	out, err := exec.Command(hooklineBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hookline %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// With on_dead_letter hold, nothing of K is delivered after K-1 is
// dead-lettered until `hookline dlq replay` delivers it; then the rest
// follow in order. `hookline dlq skip` releases key L instead, without L-1.
// J flows meanwhile.
func TestStrictHoldIsReleasedByDLQReplayOrSkip(t *testing.T) {
	cfg := testConfig(t)
	cfg.Partitions = 1
	h := start(t, cfg)
	var replayOK, skipped atomic.Bool
	sr := newStrictReceiver(t, func(id string, _ int) bool {
		return id == "L-1" || (id == "K-1" && !replayOK.Load())
	}, func(key string) bool { return key == "L" && skipped.Load() })
	// Through the CLI, as an operator would.
	if out := h.hookline(t, "endpoints", "add", "--id", "strict", "--url", sr.url, "--secret", sr.secret,
		"--ordering", "strict", "--on-dead-letter", "hold", "--timeout", "2s", "--json"); !strings.Contains(out, `"on_dead_letter": "hold"`) && !strings.Contains(out, `"on_dead_letter":"hold"`) {
		t.Fatalf("hookline endpoints add: %s", out)
	}
	waitFor(t, 10*time.Second, "the endpoint in the registry", func() bool {
		e, ok := h.env.Registry.Get("strict")
		return ok && e.Strict() && e.OnDeadLetter == "hold"
	})
	h.send("K-1", "strict", "K", 1)
	h.send("L-1", "strict", "L", 1)
	for i := 2; i <= 20; i++ {
		h.send(fmt.Sprintf("K-%d", i), "strict", "K", i)
		h.send(fmt.Sprintf("L-%d", i), "strict", "L", i)
		h.send(fmt.Sprintf("J-%d", i-1), "strict", "J", i-1)
	}
	h.send("J-20", "strict", "J", 20)
	js := seq("J-", 1, 20)

	// Both K-1 and L-1 exhaust their attempts and are dead-lettered; their
	// keys stay held, dead, as `hookline dlq held` shows.
	type heldKey struct {
		Key   string `json:"ordering_key"`
		Event string `json:"event_id"`
		State string `json:"state"`
	}
	waitFor(t, 60*time.Second, "K and L held dead", func() bool {
		dead := 0
		for _, line := range strings.Split(strings.TrimSpace(h.hookline(t, "dlq", "held", "--json")), "\n") {
			var v heldKey
			if json.Unmarshal([]byte(line), &v) == nil && v.State == "dead" && (v.Event == "K-1" || v.Event == "L-1") {
				dead++
			}
		}
		return dead == 2
	})
	if got := h.readTopic(h.env.Topics.DLQ, 2, 10*time.Second); len(got) != 2 {
		t.Fatalf("DLQ holds %d records, want K-1 and L-1", len(got))
	}
	waitFor(t, 30*time.Second, "J delivered while K and L are held", func() bool { return sr.deliveredAll(js...) })
	if k, l := sr.delivered("K-"), sr.delivered("L-"); len(k)+len(l) > 0 {
		t.Fatalf("delivered while their key was held dead: %v %v", k, l)
	}

	// Replay delivers K-1 in K's place, then the rest of K in order.
	replayOK.Store(true)
	h.hookline(t, "dlq", "replay", "--event-id", "K-1", "--operator", "tester")
	ks := seq("K-", 1, 20)
	waitFor(t, 30*time.Second, "K delivered after the replay", func() bool { return sr.deliveredAll(ks...) })

	// Skip releases L without L-1.
	if got := sr.delivered("L-"); len(got) > 0 {
		t.Fatalf("L delivered before it was skipped: %v", got)
	}
	skipped.Store(true)
	h.hookline(t, "dlq", "skip", "--event-id", "L-1", "--operator", "tester")
	ls := seq("L-", 2, 20)
	waitFor(t, 30*time.Second, "L's later events delivered after the skip", func() bool { return sr.deliveredAll(ls...) })

	checkStrictOrder(t, sr, ks, js)
	if got := sr.delivered("L-"); !slices.Equal(got, ls) {
		t.Errorf("L's events delivered in the order %v, want %v (L-1 skipped)", got, ls)
	}
	// The skip is in the audit trail like a replay.
	if out := h.hookline(t, "dlq", "replays", "--json"); !strings.Contains(out, `"target":"skip"`) || !strings.Contains(out, `"operator":"tester"`) {
		t.Errorf("hookline dlq replays shows no skip by tester:\n%s", out)
	}
	waitFor(t, 10*time.Second, "no key held", func() bool {
		return strings.TrimSpace(h.hookline(t, "dlq", "held", "--json")) == ""
	})
}

// Thousands of strict keys held at once: what waits in memory is bounded by
// the stage's read-ahead window (max_in_flight records per partition),
// whatever the number of held keys and of events behind them; the rest
// waits in Kafka. Released, every event goes out, each key in order.
func TestStrictHeldKeysWaitInKafkaNotInMemory(t *testing.T) {
	const (
		keys   = 2000
		perKey = 3
		window = 300
	)
	cfg := testConfig(t)
	cfg.Partitions = 1
	cfg.MaxInFlight = window
	// Tiers of 0.6 s, 2.4 s, 12 s, 72 s: the held events are still held
	// (not dead-lettered) when the receiver recovers.
	cfg.TierScale = 0.02
	h := start(t, cfg)
	var released atomic.Bool
	sr := newStrictReceiver(t, func(id string, _ int) bool {
		return strings.HasSuffix(id, "-1") && !released.Load()
	}, func(string) bool { return false })
	e := endpoints.Endpoint{ID: "strict", URL: sr.url, Secrets: []string{sr.secret}, Enabled: true, TimeoutMS: 2000, Ordering: endpoints.OrderingStrict}
	if err := h.env.Registry.Put(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	// Eight senders, each with its own keys: a key's events are sent in
	// order, one after another.
	var all []string
	for n := 1; n <= perKey; n++ {
		for k := range keys {
			all = append(all, fmt.Sprintf("k%04d-%d", k, n))
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := 1; n <= perKey; n++ {
				for k := g; k < keys; k += 8 {
					h.send(fmt.Sprintf("k%04d-%d", k, n), "strict", fmt.Sprintf("k%04d", k), n)
				}
			}
		})
	}
	wg.Wait()
	gauge := func(m, name string) int {
		for _, line := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(line, name+`{stage="strict"} `); ok {
				var n int
				if _, err := fmt.Sscan(v, &n); err != nil {
					t.Fatalf("%s: %q is not a count: %v", name, v, err)
				}
				return n
			}
		}
		return -1
	}
	metrics := h.metricsText
	// Hold until the window is full of held keys' events, then for two
	// more seconds. Fetching pauses once the window holds max_in_flight
	// records, and the poll under way when it fills can bring up to
	// 2 × max_in_flight more: no more than 3 × max_in_flight is ever held,
	// however many keys are held and events wait behind them.
	var mostKeys, mostEvents int
	sample := func() {
		m := metrics()
		mostKeys, mostEvents = max(mostKeys, gauge(m, "hookline_held_keys")), max(mostEvents, gauge(m, "hookline_held_events"))
	}
	waitFor(t, 60*time.Second, "the window to fill with held keys", func() bool {
		sample()
		return mostEvents >= window
	})
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		sample()
	}
	delivered := len(sr.delivered("k"))
	t.Logf("held at most %d keys and %d events in memory, %d events delivered, %d waiting in Kafka",
		mostKeys, mostEvents, delivered, len(all)-delivered-mostEvents)
	if mostEvents > 3*window {
		t.Errorf("%d held events in memory, more than 3 × the window of %d", mostEvents, window)
	}
	if delivered+mostEvents >= len(all) {
		t.Errorf("%d delivered and %d held of %d: nothing waited in Kafka", delivered, mostEvents, len(all))
	}
	released.Store(true)
	waitFor(t, 3*time.Minute, "every event delivered", func() bool { return sr.deliveredAll(all...) })
	sr.mu.Lock()
	early, order := sr.early, slices.Clone(sr.okAt)
	sr.mu.Unlock()
	if len(early) > 0 {
		t.Errorf("%d events were attempted before the first of their key, e.g. %v", len(early), early[:min(5, len(early))])
	}
	next := make(map[string]int)
	for _, id := range order {
		key, n, _ := strings.Cut(id, "-")
		if want := fmt.Sprint(next[key] + 1); n != want {
			t.Fatalf("key %s: event %s delivered when %s was next", key, id, want)
		}
		next[key]++
	}
	testreport.Figures(t, "strict: %d keys x %d events, window %d: held at most %d keys and %d events in memory, all %d delivered in key order",
		keys, perKey, window, mostKeys, mostEvents, len(all))
}

// metricsText is what the service's /metrics says now.
func (h *harness) metricsText() string {
	h.t.Helper()
	resp, err := http.Get("http://" + h.svc.MetricsAddr() + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
