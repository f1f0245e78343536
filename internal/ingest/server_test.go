package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
)

const (
	eventsTopic    = "hookline.events"
	endpointsTopic = "hookline.endpoints"
)

// env is a kfake cluster with the two topics, a running registry holding
// one enabled and one disabled endpoint, and a producer client.
//
// The cluster is on an in-memory network, so that a test that waits for
// something may run in a synctest bubble: a goroutine blocked on loopback
// TCP is not durably blocked, and the bubble's clock could not advance.
type env struct {
	cluster  *kfake.Cluster
	net      *kfake.VirtualNetwork
	producer *kgo.Client
	registry *endpoints.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	// The port is only a name on the in-memory network. Nothing listens on
	// port 1 of the host: a client left without the virtual dialer fails
	// instead of reaching a real broker on the default port, 9092.
	vn := new(kfake.VirtualNetwork)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(1), kfake.ListenFn(vn.Listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.CreateTopic(eventsTopic, 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(endpointsTopic, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	e := &env{cluster: c, net: vn}
	e.producer = e.newClient(t)
	e.registry = endpoints.NewRegistry(e.newClient(t), endpointsTopic, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.registry.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.registry.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []endpoints.Endpoint{
		{ID: "ep_1", URL: "https://example.com/a", Enabled: true},
		{ID: "ep_off", URL: "https://example.com/b", DisabledReason: "HTTP 410 Gone"},
	} {
		secret, err := endpoints.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		ep.Secrets = []string{secret}
		if err := e.registry.Put(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// clientOpts are the options of a client of the env's cluster.
func (e *env) clientOpts(more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.Dialer(e.net.DialContext)}, more...)
}

// newClient is a client of the env's cluster, closed at the end of the test.
func (e *env) newClient(t testing.TB) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(e.clientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (e *env) server(t testing.TB, change func(*Config)) *Server {
	t.Helper()
	cfg := Config{EventsTopic: eventsTopic, Registry: e.registry, Producer: e.producer}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// records reads the events topic up to its current end.
func (e *env) records(t *testing.T) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := e.newClient(t)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, eventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	until := make(map[int32]int64)
	from := make(map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			until[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{eventsTopic: from})
	var out []*kgo.Record
	for len(until) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v", eventsTopic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= until[r.Partition] {
				delete(until, r.Partition)
			}
		})
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, h http.Handler, method, path, body string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, rec.Body.String())
		}
	}
	return res
}

func (r response) str(key string) string { s, _ := r.body[key].(string); return s }

func TestPostEventWritesOneRecord(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := e.server(t, func(c *Config) { c.Now = func() time.Time { return now } }).Handler()

	res := do(t, h, "POST", "/v1/events", `{"type":"invoice.paid","endpoint_id":"ep_1","ordering_key":"customer-7","payload":{"amount":42}}`)
	if res.status != http.StatusAccepted || res.body["duplicate"] != false || !strings.HasPrefix(res.str("id"), "evt_") {
		t.Fatalf("answer %d %s, want 202 with a generated id", res.status, res.raw)
	}
	recs := e.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records written, want 1", len(recs))
	}
	rec := recs[0]
	if string(rec.Key) != "customer-7" {
		t.Fatalf("record key %q, want the ordering key", rec.Key)
	}
	ev, err := envelope.Decode(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != res.str("id") || ev.Type != "invoice.paid" || ev.EndpointID != "ep_1" ||
		string(ev.Payload) != `{"amount":42}` || !ev.CreatedAt.Equal(now) || ev.V != envelope.Version {
		t.Fatalf("record value %+v does not carry the event", ev)
	}
	for _, hd := range rec.Headers {
		if hd.Key == envelope.HeaderIdempotencyKey {
			t.Fatal("an event without Idempotency-Key carries the header")
		}
	}

	// Without an ordering key, the key is the endpoint id (or the tenant).
	do(t, h, "POST", "/v1/events", `{"type":"user.created","tenant":"acme","payload":[1]}`, "Idempotency-Key", "req-9")
	recs = e.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records written, want 2", len(recs))
	}
	for _, rec := range recs {
		if string(rec.Key) == "acme" {
			if got := headerValue(rec, envelope.HeaderIdempotencyKey); got != "req-9" {
				t.Fatalf("idempotency header = %q, want req-9", got)
			}
			return
		}
	}
	t.Fatal("no record keyed by the tenant")
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestPostEventRejects(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, func(c *Config) { c.MaxPayloadBytes = 1024 }).Handler()
	big := `"` + strings.Repeat("x", 2000) + `"`
	for _, tc := range []struct {
		name   string
		body   string
		header []string
		status int
		field  string
	}{
		{"malformed JSON", `{"type":`, nil, 400, "body"},
		{"not an object", `[1,2]`, nil, 400, "body"},
		{"empty body", ``, nil, 400, "body"},
		{"trailing data", `{"type":"t","endpoint_id":"ep_1","payload":1} {}`, nil, 400, "body"},
		{"unknown field", `{"type":"t","endpoint_id":"ep_1","payload":1,"colour":"red"}`, nil, 400, "colour"},
		{"type not a string", `{"type":7,"endpoint_id":"ep_1","payload":1}`, nil, 400, "type"},
		{"missing type", `{"endpoint_id":"ep_1","payload":1}`, nil, 400, "type"},
		{"no address", `{"type":"t","payload":1}`, nil, 400, "endpoint_id"},
		{"both addresses", `{"type":"t","endpoint_id":"ep_1","tenant":"acme","payload":1}`, nil, 400, "endpoint_id"},
		{"missing payload", `{"type":"t","endpoint_id":"ep_1"}`, nil, 400, "payload"},
		{"id too long", `{"id":"` + strings.Repeat("i", envelope.MaxIDLen+1) + `","type":"t","endpoint_id":"ep_1","payload":1}`, nil, 400, "id"},
		{"bad idempotency key", `{"type":"t","endpoint_id":"ep_1","payload":1}`, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "Idempotency-Key"},
		{"unknown endpoint", `{"type":"t","endpoint_id":"ep_nope","payload":1}`, nil, 422, "endpoint_id"},
		{"disabled endpoint", `{"type":"t","endpoint_id":"ep_off","payload":1}`, nil, 422, "endpoint_id"},
		{"payload too large", `{"type":"t","endpoint_id":"ep_1","payload":` + big + `}`, nil, 413, "payload"},
		{"body too large", `{"type":"t","endpoint_id":"ep_1","payload":"` + strings.Repeat("x", 20<<10) + `"}`, nil, 413, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, "POST", "/v1/events", tc.body, tc.header...)
			if res.status != tc.status || res.str("field") != tc.field || res.str("error") == "" {
				t.Fatalf("answer %d %s, want %d naming %q", res.status, res.raw, tc.status, tc.field)
			}
		})
	}
	if n := len(e.records(t)); n != 0 {
		t.Fatalf("%d records written for rejected events", n)
	}
}

// Every write must be sent as JSON; a cross-site form post or no-cors
// fetch (text/plain, form types, none) is refused with 415 before it does
// anything, with and without tokens.
func TestWritesNeedJSONContentType(t *testing.T) {
	e := newEnv(t)
	open := e.server(t, nil).Handler()
	guarded := e.server(t, func(c *Config) { c.Tokens = []Token{token("p", "tok", nil, ScopeIngest, ScopeAdmin)} }).Handler()
	event := `{"type":"t","endpoint_id":"ep_1","payload":{}}`
	for _, tt := range []struct {
		name, method, path, body, contentType string
		want                                  int
	}{
		{"json", "POST", "/v1/events", event, "application/json", http.StatusAccepted},
		{"json with charset", "POST", "/v1/events", event, "application/json; charset=utf-8", http.StatusAccepted},
		{"text/plain", "POST", "/v1/events", event, "text/plain", http.StatusUnsupportedMediaType},
		{"form", "POST", "/v1/events", event, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"none", "POST", "/v1/events", event, "", http.StatusUnsupportedMediaType},
		{"batch as text", "POST", "/v1/events/batch", `{"events":[` + event + `]}`, "text/plain", http.StatusUnsupportedMediaType},
		{"create endpoint as form", "POST", "/v1/endpoints", `{"url":"https://example.com/x"}`, "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"patch as text", "PATCH", "/v1/endpoints/ep_1", `{"enabled":false}`, "text/plain", http.StatusUnsupportedMediaType},
		{"rotate without a body or type", "POST", "/v1/endpoints/ep_1/rotate-secret", ``, "", http.StatusUnsupportedMediaType},
		{"get needs none", "GET", "/v1/endpoints/ep_1", ``, "", http.StatusOK},
	} {
		for name, h := range map[string]http.Handler{"no tokens": open, "tokens": guarded} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				res := do(t, h, tt.method, tt.path, tt.body, "Content-Type", tt.contentType, "Authorization", "Bearer tok")
				if res.status != tt.want {
					t.Fatalf("%s %s as %q = %d %s, want %d", tt.method, tt.path, tt.contentType, res.status, res.raw, tt.want)
				}
				if tt.want == http.StatusUnsupportedMediaType && res.str("field") != "Content-Type" {
					t.Fatalf("415 does not name Content-Type: %s", res.raw)
				}
			})
		}
	}
	if n := len(e.records(t)); n != 4 {
		t.Fatalf("%d records written, want only the 4 JSON posts", n)
	}
	if ep, _ := e.registry.Get("ep_1"); !ep.Enabled {
		t.Fatal("a text/plain PATCH disabled the endpoint")
	}
}

// On loopback, only requests for a loopback name are served: a page whose
// name resolves to 127.0.0.1 (DNS rebinding) cannot reach the API.
func TestLoopbackHostOnly(t *testing.T) {
	h := newEnv(t).server(t, func(c *Config) { c.LoopbackOnly = true }).Handler()
	for _, tt := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:8080", http.StatusOK},
		{"localhost:8080", http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"[::1]:8080", http.StatusOK},
		{"127.0.0.2", http.StatusOK},
		{"evil.example:8080", http.StatusForbidden},
		{"127.0.0.1.nip.io:8080", http.StatusForbidden},
		{"10.0.0.5:8080", http.StatusForbidden},
		{"", http.StatusForbidden},
	} {
		t.Run(tt.host, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/endpoints", nil)
			req.Host = tt.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("Host %q = %d %s, want %d", tt.host, rec.Code, rec.Body.String(), tt.want)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()

	first := do(t, h, "POST", "/v1/events", `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`)
	again := do(t, h, "POST", "/v1/events", `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":2}`)
	if first.status != 202 || first.body["duplicate"] != false || again.status != 202 || again.body["duplicate"] != true || again.str("id") != "order-1" {
		t.Fatalf("by id: first %s, again %s", first.raw, again.raw)
	}

	keyed := do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "req-1")
	retry := do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "req-1")
	if keyed.status != 202 || retry.status != 202 || retry.body["duplicate"] != true || retry.str("id") != keyed.str("id") {
		t.Fatalf("by key: first %s, retry %s", keyed.raw, retry.raw)
	}

	// The key wins over the id: same key, another id is still a duplicate.
	other := do(t, h, "POST", "/v1/events", `{"id":"other","type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "req-1")
	if other.body["duplicate"] != true || other.str("id") != keyed.str("id") {
		t.Fatalf("same key, other id: %s", other.raw)
	}
	// Keys and ids live apart: a key spelled like an earlier id is new.
	fresh := do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "order-1")
	if fresh.body["duplicate"] != false {
		t.Fatalf("key spelled like an id: %s", fresh.raw)
	}
	// Generated ids are not dedupe keys: the same body twice is two events.
	do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`)
	do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`)

	if n := len(e.records(t)); n != 5 {
		t.Fatalf("%d records written, want 5", n)
	}
}

func TestDuplicatesExpireAfterWindow(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := e.server(t, func(c *Config) { c.Now = clock; c.IdempotencyWindow = time.Hour }).Handler()
	body := `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`
	do(t, h, "POST", "/v1/events", body)
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if res := do(t, h, "POST", "/v1/events", body); res.body["duplicate"] != false {
		t.Fatalf("after the window: %s, want a new event", res.raw)
	}
}

// gateProducer holds every ProduceSync until the gate opens and counts the
// records it was given.
type gateProducer struct {
	next    Producer
	gate    chan struct{}
	mu      sync.Mutex
	records int
}

func (p *gateProducer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	<-p.gate
	p.mu.Lock()
	p.records += len(rs)
	p.mu.Unlock()
	return p.next.ProduceSync(ctx, rs...)
}

func TestConcurrentIdenticalRequestsProduceOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &gateProducer{next: e.producer, gate: make(chan struct{})}
		s := e.server(t, func(c *Config) { c.Producer = p })
		h := s.Handler()

		const n = 8
		results := make(chan response, n)
		for range n {
			go func() {
				results <- do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`, "Idempotency-Key", "same")
			}()
		}
		// Hold the write until every request is blocked: one owns the key, at
		// the gate, and the others meet it in flight.
		synctest.Wait()
		if !s.dedupe.busy(idempotencyDedupeKey("", "same")) {
			t.Fatal("no request took the key")
		}
		close(p.gate)

		ids := make(map[string]bool)
		originals := 0
		for range n {
			res := <-results
			if res.status != 202 {
				t.Fatalf("answer %d %s", res.status, res.raw)
			}
			ids[res.str("id")] = true
			if res.body["duplicate"] == false {
				originals++
			}
		}
		if len(ids) != 1 || originals != 1 || p.records != 1 {
			t.Fatalf("ids %v, %d originals, %d records produced; want one of each", ids, originals, p.records)
		}
	})
}

type failingProducer struct{ err error }

func (p failingProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r, Err: p.err}
	}
	return out
}

func TestProduceFailureAnswers503AndAllowsRetry(t *testing.T) {
	e := newEnv(t)
	broken := e.server(t, func(c *Config) { c.Producer = failingProducer{errors.New("NOT_ENOUGH_REPLICAS")} })
	body := `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`
	res := do(t, broken.Handler(), "POST", "/v1/events", body)
	if res.status != http.StatusServiceUnavailable || !strings.Contains(res.str("error"), "NOT_ENOUGH_REPLICAS") {
		t.Fatalf("answer %d %s, want 503 with the reason", res.status, res.raw)
	}
	// The failed write did not claim the id: a retry is a new event.
	broken.cfg.Producer = e.producer
	if res := do(t, broken.Handler(), "POST", "/v1/events", body); res.status != 202 || res.body["duplicate"] != false {
		t.Fatalf("retry after a failure: %d %s", res.status, res.raw)
	}
}

func TestDedupeSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()
	byID := do(t, h, "POST", "/v1/events", `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`)
	byKey := do(t, h, "POST", "/v1/events", `{"type":"t","tenant":"acme","payload":1}`, "Idempotency-Key", "req-1")
	batch := do(t, h, "POST", "/v1/events/batch", `{"events":[{"id":"b-1","type":"t","endpoint_id":"ep_1","payload":1}]}`)
	if byID.status != 202 || byKey.status != 202 || batch.status != 202 {
		t.Fatalf("setup: %s %s %s", byID.raw, byKey.raw, batch.raw)
	}

	restarted := e.server(t, nil)
	follow(t, restarted, e.producer)
	h = restarted.Handler()
	for _, tc := range []struct {
		name, body, key, wantID string
	}{
		{"by id", `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`, "", "order-1"},
		{"by key", `{"type":"t","tenant":"acme","payload":1}`, "req-1", byKey.str("id")},
		{"batch id", `{"id":"b-1","type":"t","endpoint_id":"ep_1","payload":1}`, "", "b-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			if tc.key != "" {
				header = []string{"Idempotency-Key", tc.key}
			}
			res := do(t, h, "POST", "/v1/events", tc.body, header...)
			if res.status != 202 || res.body["duplicate"] != true || res.str("id") != tc.wantID {
				t.Fatalf("after restart: %s, want duplicate of %s", res.raw, tc.wantID)
			}
		})
	}
	if n := len(e.records(t)); n != 3 {
		t.Fatalf("%d records written, want 3", n)
	}

	// Loading with a clock past the window finds nothing to dedupe.
	later := e.server(t, func(c *Config) {
		c.IdempotencyWindow = time.Hour
		c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	})
	follow(t, later, e.producer)
	if res := do(t, later.Handler(), "POST", "/v1/events", `{"id":"order-1","type":"t","endpoint_id":"ep_1","payload":1}`); res.body["duplicate"] != false {
		t.Fatalf("outside the window: %s, want a new event", res.raw)
	}
}

// follow loads s's dedupe index and follows the events topic until the
// test ends, as serve does, or until the returned stop is called, which
// returns once FollowIdempotency has (writing its last snapshot).
func follow(t *testing.T, s *Server, cl *kgo.Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.LoadIdempotency(ctx, cl); err != nil {
		t.Fatal(err)
	}
	fctx, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.FollowIdempotency(fctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			end()
			if err := <-done; err != nil {
				t.Errorf("FollowIdempotency: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestLoadIdempotencyEmptyAndMissingTopic(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.LoadIdempotency(ctx, e.producer); err != nil {
		t.Fatalf("empty topic: %v", err)
	}
	missing := e.server(t, func(c *Config) { c.EventsTopic = "nope" })
	if err := missing.LoadIdempotency(ctx, e.producer); err == nil {
		t.Fatal("missing topic: no error")
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, func(c *Config) { c.MaxBatch = 4 }).Handler()
	do(t, h, "POST", "/v1/events", `{"id":"seen","type":"t","endpoint_id":"ep_1","payload":1}`)

	res := do(t, h, "POST", "/v1/events/batch", `{"events":[
		{"id":"a","type":"t","endpoint_id":"ep_1","payload":1},
		{"type":"t","tenant":"acme","ordering_key":"k","payload":2},
		{"id":"seen","type":"t","endpoint_id":"ep_1","payload":3},
		{"id":"a","type":"t","endpoint_id":"ep_1","payload":4}
	]}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("answer %d %s", res.status, res.raw)
	}
	var got batchResponse
	if err := json.Unmarshal([]byte(res.raw), &got); err != nil {
		t.Fatal(err)
	}
	want := []eventResult{{"a", false}, {got.Results[1].ID, false}, {"seen", true}, {"a", true}}
	if fmt.Sprint(got.Results) != fmt.Sprint(want) || !strings.HasPrefix(got.Results[1].ID, "evt_") {
		t.Fatalf("results %v, want %v", got.Results, want)
	}
	if n := len(e.records(t)); n != 3 {
		t.Fatalf("%d records written, want 3 (1 single + 2 new of the batch)", n)
	}

	for _, tc := range []struct {
		name, body string
		header     []string
		status     int
		field      string
		index      int // -1: none
	}{
		{"invalid event", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":1},{"endpoint_id":"ep_1","payload":1}]}`, nil, 400, "events[1].type", 1},
		{"unknown field in event", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":1,"x":1}]}`, nil, 400, "events[0].x", 0},
		{"event not an object", `{"events":[1]}`, nil, 400, "events[0]", 0},
		{"unknown endpoint", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":1},{"type":"t","endpoint_id":"zz","payload":1}]}`, nil, 422, "events[1].endpoint_id", 1},
		{"payload too large", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":"` + strings.Repeat("x", 300<<10) + `"}]}`, nil, 413, "events[0].payload", 0},
		{"no events", `{"events":[]}`, nil, 400, "events", -1},
		{"events missing", `{}`, nil, 400, "events", -1},
		{"too many", `{"events":[{},{},{},{},{}]}`, nil, 400, "events", -1},
		{"events not an array", `{"events":{}}`, nil, 400, "events", -1},
		{"malformed", `{"events":[`, nil, 400, "body", -1},
		{"idempotency key", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":1}]}`, []string{"Idempotency-Key", "x"}, 400, "Idempotency-Key", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, "POST", "/v1/events/batch", tc.body, tc.header...)
			if res.status != tc.status || res.str("field") != tc.field {
				t.Fatalf("answer %d %s, want %d naming %q", res.status, res.raw, tc.status, tc.field)
			}
			idx, ok := res.body["index"].(float64)
			if (tc.index < 0 && ok) || (tc.index >= 0 && (!ok || int(idx) != tc.index)) {
				t.Fatalf("index in %s, want %d", res.raw, tc.index)
			}
		})
	}
	if n := len(e.records(t)); n != 3 {
		t.Fatalf("%d records after rejected batches, want still 3", n)
	}
}

func TestBatchBodyLimit(t *testing.T) {
	h := newEnv(t).server(t, func(c *Config) { c.MaxBatchBytes = 1024 }).Handler()
	res := do(t, h, "POST", "/v1/events/batch", `{"events":[{"type":"t","endpoint_id":"ep_1","payload":"`+strings.Repeat("x", 2048)+`"}]}`)
	if res.status != http.StatusRequestEntityTooLarge || res.str("field") != "body" {
		t.Fatalf("answer %d %s, want 413 naming body", res.status, res.raw)
	}
}

func TestEndpointCRUD(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()

	created := do(t, h, "POST", "/v1/endpoints", `{"id":"ep_new","url":"https://example.com/new","tenant":"acme","event_types":["invoice.*"],"timeout_ms":5000}`)
	if created.status != http.StatusCreated || created.header.Get("Location") != "/v1/endpoints/ep_new" {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	secrets, _ := created.body["secrets"].([]any)
	if len(secrets) != 1 {
		t.Fatalf("create answer has secrets %v, want the generated one", created.body["secrets"])
	}
	secret, _ := secrets[0].(string)
	if err := endpoints.CheckSecret(secret); err != nil {
		t.Fatalf("generated secret %q is not shown in full: %v", secret, err)
	}
	if created.body["enabled"] != true {
		t.Fatalf("a new endpoint is not enabled: %s", created.raw)
	}

	generated := do(t, h, "POST", "/v1/endpoints", `{"url":"https://example.com/gen","secret":"`+secret+`"}`)
	if generated.status != 201 || !strings.HasPrefix(generated.str("id"), "ep_") {
		t.Fatalf("create with generated id: %d %s", generated.status, generated.raw)
	}

	list := do(t, h, "GET", "/v1/endpoints", "")
	if list.status != 200 || strings.Contains(list.raw, secret) || !strings.Contains(list.raw, endpoints.Mask(secret)) {
		t.Fatalf("list: %d %s, want masked secrets", list.status, list.raw)
	}
	if eps, _ := list.body["endpoints"].([]any); len(eps) != 4 {
		t.Fatalf("list has %d endpoints, want 4", len(eps))
	}

	got := do(t, h, "GET", "/v1/endpoints/ep_new", "")
	if got.status != 200 || got.str("url") != "https://example.com/new" || strings.Contains(got.raw, secret) {
		t.Fatalf("get: %d %s", got.status, got.raw)
	}

	patched := do(t, h, "PATCH", "/v1/endpoints/ep_new", `{"url":"https://example.com/v2","enabled":false,"disabled_reason":"maintenance"}`)
	if patched.status != 200 || patched.str("url") != "https://example.com/v2" || patched.body["enabled"] != false || patched.str("disabled_reason") != "maintenance" {
		t.Fatalf("patch: %d %s", patched.status, patched.raw)
	}
	if ep, _ := e.registry.Get("ep_new"); ep.Tenant != "acme" || ep.TimeoutMS != 5000 || ep.Secrets[0] != secret {
		t.Fatalf("patch changed fields it did not name: %+v", ep)
	}
	reenabled := do(t, h, "PATCH", "/v1/endpoints/ep_new", `{"enabled":true}`)
	if reenabled.body["enabled"] != true || reenabled.str("disabled_reason") != "" {
		t.Fatalf("re-enable: %s", reenabled.raw)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"create existing id", "POST", "/v1/endpoints", `{"id":"ep_new","url":"https://example.com/x"}`, 409, "id"},
		{"create without url", "POST", "/v1/endpoints", `{"id":"ep_x"}`, 400, "url"},
		{"create with bad url", "POST", "/v1/endpoints", `{"url":"example.com"}`, 400, "url"},
		{"create with bad secret", "POST", "/v1/endpoints", `{"url":"https://example.com","secret":"hunter2"}`, 400, "secret"},
		{"create with bad id", "POST", "/v1/endpoints", `{"id":"a b","url":"https://example.com"}`, 400, "id"},
		{"create with bad timeout", "POST", "/v1/endpoints", `{"url":"https://example.com","timeout_ms":300001}`, 400, "timeout_ms"},
		{"create with unknown field", "POST", "/v1/endpoints", `{"url":"https://example.com","secrets":[]}`, 400, "secrets"},
		{"get unknown", "GET", "/v1/endpoints/nope", "", 404, "id"},
		{"patch unknown", "PATCH", "/v1/endpoints/nope", `{"url":"https://example.com"}`, 404, "id"},
		{"patch bad url", "PATCH", "/v1/endpoints/ep_new", `{"url":"ftp://x"}`, 400, "url"},
		{"patch no secrets", "PATCH", "/v1/endpoints/ep_new", `{"secrets":[]}`, 400, "secrets"},
		{"patch id", "PATCH", "/v1/endpoints/ep_new", `{"id":"other"}`, 400, "id"},
		{"patch malformed", "PATCH", "/v1/endpoints/ep_new", `{`, 400, "body"},
		{"delete unknown", "DELETE", "/v1/endpoints/nope", "", 404, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, tc.method, tc.path, tc.body)
			if res.status != tc.status || res.str("field") != tc.field {
				t.Fatalf("answer %d %s, want %d naming %q", res.status, res.raw, tc.status, tc.field)
			}
		})
	}

	if res := do(t, h, "DELETE", "/v1/endpoints/ep_new", ""); res.status != http.StatusNoContent || res.raw != "" {
		t.Fatalf("delete: %d %s", res.status, res.raw)
	}
	if res := do(t, h, "GET", "/v1/endpoints/ep_new", ""); res.status != 404 {
		t.Fatalf("get after delete: %d", res.status)
	}
	if res := do(t, h, "DELETE", "/v1/endpoints/ep_new", ""); res.status != 404 {
		t.Fatalf("second delete: %d", res.status)
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	h := newEnv(t).server(t, nil).Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/events", 405, "POST"},
		{"PUT", "/v1/events/batch", 405, "POST"},
		{"DELETE", "/v1/endpoints", 405, "GET, HEAD, POST"},
		{"POST", "/v1/endpoints/ep_1", 405, "GET, HEAD, PATCH, DELETE"},
		{"GET", "/v2/nothing", 404, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := do(t, h, tc.method, tc.path, "")
			if res.status != tc.status || res.str("error") == "" || res.header.Get("Allow") != tc.allow {
				t.Fatalf("answer %d %s (Allow %q), want %d (Allow %q)", res.status, res.raw, res.header.Get("Allow"), tc.status, tc.allow)
			}
		})
	}
}

func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newEnv(t).server(t, func(c *Config) { c.Metrics = reg }).Handler()
	do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`)
	do(t, h, "POST", "/v1/events", `{"type":"t","endpoint_id":"ep_1","payload":1}`)
	do(t, h, "POST", "/v1/events", `{}`)
	do(t, h, "GET", "/v1/events", "")

	counts := make(map[string]float64)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hookline_ingest_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make(map[string]string)
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counts[labels["route"]+" "+labels["status"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"POST /v1/events 202": 2, "POST /v1/events 400": 1, "/v1/events 405": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Registry: &endpoints.Registry{}, Producer: failingProducer{}},
		{EventsTopic: "e", Producer: failingProducer{}},
		{EventsTopic: "e", Registry: &endpoints.Registry{}},
		{EventsTopic: "e", Registry: &endpoints.Registry{}, Producer: failingProducer{}, MaxBatch: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) returned no error", cfg)
		}
	}
}

func TestLoadIdempotencyReadsPastTransactionMarkers(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	txn, err := kgo.NewClient(e.clientOpts(kgo.TransactionalID("direct-producer"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	rec, err := envelope.Record(eventsTopic, envelope.Event{ID: "txn-1", Type: "t", EndpointID: "ep_1", Payload: []byte(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The commit marker is the last offset of the partition.
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	s := e.server(t, nil)
	follow(t, s, e.producer)
	res := do(t, s.Handler(), "POST", "/v1/events", `{"id":"txn-1","type":"t","endpoint_id":"ep_1","payload":1}`)
	if res.body["duplicate"] != true {
		t.Fatalf("event written in a transaction is not a duplicate after load: %s", res.raw)
	}
}
