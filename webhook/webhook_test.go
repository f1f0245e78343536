package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/signature"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func key(t *testing.T, scheme string) string {
	t.Helper()
	k, err := signature.NewKey(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signed builds a request as hookline sends it.
func signed(t *testing.T, secrets []string, id string, ts time.Time, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	if err := signature.Headers(r.Header, secrets, id, ts, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return r
}

// handlerFunc counts calls and records what the handler saw.
type recorder struct {
	calls  atomic.Int32
	status atomic.Int32
	body   atomic.Value
	id     atomic.Value
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	rc.body.Store(string(b))
	d, _ := FromContext(r.Context())
	rc.id.Store(d.ID)
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newMiddleware(t *testing.T, o Options, next http.Handler) http.Handler {
	t.Helper()
	mw, err := Middleware(o)
	if err != nil {
		t.Fatal(err)
	}
	return mw(next)
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestVerification(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	v1, other := key(t, signature.SchemeV1), key(t, signature.SchemeV1)
	sk := key(t, signature.SchemeV1a)
	pk, _ := signature.PublicKey(sk)
	body := `{"id":"evt_1","type":"order.created"}`
	tests := []struct {
		name string
		keys []string
		req  func() *http.Request
		want int
	}{
		{"v1", []string{v1}, func() *http.Request { return signed(t, []string{v1}, "evt_1", clk.Now(), body) }, http.StatusNoContent},
		{"v1a with the public key", []string{pk}, func() *http.Request { return signed(t, []string{sk}, "evt_1", clk.Now(), body) }, http.StatusNoContent},
		{"rotation: receiver still on the old secret", []string{other}, func() *http.Request { return signed(t, []string{v1, other}, "evt_1", clk.Now(), body) }, http.StatusNoContent},
		{"rotation: receiver holds both", []string{v1, other}, func() *http.Request { return signed(t, []string{v1}, "evt_1", clk.Now(), body) }, http.StatusNoContent},
		{"changed body", []string{v1}, func() *http.Request {
			r := signed(t, []string{v1}, "evt_1", clk.Now(), body)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(body, "created", "deleted", 1)))
			return r
		}, http.StatusUnauthorized},
		{"changed id", []string{v1}, func() *http.Request {
			r := signed(t, []string{v1}, "evt_1", clk.Now(), body)
			r.Header.Set(signature.HeaderID, "evt_2")
			return r
		}, http.StatusUnauthorized},
		{"wrong secret", []string{other}, func() *http.Request { return signed(t, []string{v1}, "evt_1", clk.Now(), body) }, http.StatusUnauthorized},
		{"wrong public key", []string{pk}, func() *http.Request {
			return signed(t, []string{key(t, signature.SchemeV1a)}, "evt_1", clk.Now(), body)
		}, http.StatusUnauthorized},
		{"stale timestamp", []string{v1}, func() *http.Request {
			return signed(t, []string{v1}, "evt_1", clk.Now().Add(-5*time.Minute-time.Second), body)
		}, http.StatusUnauthorized},
		{"future timestamp", []string{v1}, func() *http.Request {
			return signed(t, []string{v1}, "evt_1", clk.Now().Add(5*time.Minute+time.Second), body)
		}, http.StatusUnauthorized},
		{"at the tolerance edge", []string{v1}, func() *http.Request { return signed(t, []string{v1}, "evt_1", clk.Now().Add(-5*time.Minute), body) }, http.StatusNoContent},
		{"missing signature", []string{v1}, func() *http.Request {
			r := signed(t, []string{v1}, "evt_1", clk.Now(), body)
			r.Header.Del(signature.HeaderSignature)
			return r
		}, http.StatusBadRequest},
		{"bad timestamp", []string{v1}, func() *http.Request {
			r := signed(t, []string{v1}, "evt_1", clk.Now(), body)
			r.Header.Set(signature.HeaderTimestamp, "yesterday")
			return r
		}, http.StatusBadRequest},
		{"more signatures than are checked", []string{v1}, func() *http.Request {
			r := signed(t, []string{v1}, "evt_1", clk.Now(), body)
			r.Header.Set(signature.HeaderSignature, strings.Repeat("v1a,AAAA ", signature.MaxSignatures)+r.Header.Get(signature.HeaderSignature))
			return r
		}, http.StatusBadRequest},
		{"body too large", []string{v1}, func() *http.Request {
			return signed(t, []string{v1}, "evt_1", clk.Now(), strings.Repeat("x", DefaultMaxBodyBytes+1))
		}, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recorder{}
			h := newMiddleware(t, Options{Keys: tt.keys, Now: clk.Now}, rc)
			w := serve(h, tt.req())
			if w.Code != tt.want {
				t.Fatalf("status %d %q, want %d", w.Code, w.Body.String(), tt.want)
			}
			wantCalls := int32(0)
			if tt.want < 300 {
				wantCalls = 1
				if got := rc.body.Load(); got != body {
					t.Fatalf("handler read body %q", got)
				}
				if got := rc.id.Load(); got != "evt_1" {
					t.Fatalf("FromContext id %v", got)
				}
			}
			if rc.calls.Load() != wantCalls {
				t.Fatalf("handler called %d times, want %d", rc.calls.Load(), wantCalls)
			}
		})
	}
}

// A replayed request (the same bytes again, within the tolerance) and a
// redelivery of an id already processed do not reach the handler; they are
// acknowledged so the sender stops. A failed attempt is forgotten, so the
// retry is processed.
func TestReplayAndDedupe(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	v1 := key(t, signature.SchemeV1)
	rc := &recorder{}
	h := newMiddleware(t, Options{Keys: []string{v1}, Now: clk.Now}, rc)
	body := `{"n":1}`

	first := signed(t, []string{v1}, "evt_1", clk.Now(), body)
	replay := signed(t, []string{v1}, "evt_1", clk.Now(), body)
	if w := serve(h, first); w.Code != http.StatusNoContent {
		t.Fatalf("first delivery %d", w.Code)
	}
	clk.Add(time.Minute)
	w := serve(h, replay)
	if w.Code != http.StatusOK || w.Header().Get(HeaderDuplicate) != "true" {
		t.Fatalf("replay = %d %v, want 200 with %s", w.Code, w.Header(), HeaderDuplicate)
	}
	if w := serve(h, signed(t, []string{v1}, "evt_1", clk.Now(), body)); w.Code != http.StatusOK || w.Header().Get(HeaderDuplicate) != "true" {
		t.Fatalf("redelivery = %d", w.Code)
	}
	if n := rc.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times for one webhook-id, want 1", n)
	}

	rc.status.Store(http.StatusInternalServerError)
	if w := serve(h, signed(t, []string{v1}, "evt_2", clk.Now(), body)); w.Code != http.StatusInternalServerError {
		t.Fatalf("failing handler %d", w.Code)
	}
	rc.status.Store(0)
	if w := serve(h, signed(t, []string{v1}, "evt_2", clk.Now(), body)); w.Code != http.StatusNoContent {
		t.Fatalf("retry after a failure = %d, want processed", w.Code)
	}
	if n := rc.calls.Load(); n != 3 {
		t.Fatalf("handler ran %d times, want 3", n)
	}
}

// A repeat that arrives while the first request is still being handled
// gets 503 and Retry-After; a panicking handler releases its claim.
func TestInFlightAndPanic(t *testing.T) {
	v1 := key(t, signature.SchemeV1)
	release := make(chan struct{})
	entered := make(chan struct{})
	var calls atomic.Int32
	h := newMiddleware(t, Options{Keys: []string{v1}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	}))
	done := make(chan int)
	go func() { done <- serve(h, signed(t, []string{v1}, "evt_1", time.Now(), `{}`)).Code }()
	<-entered
	w := serve(h, signed(t, []string{v1}, "evt_1", time.Now(), `{}`))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("concurrent repeat = %d %v, want 503 with Retry-After", w.Code, w.Header())
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first = %d", code)
	}

	store := NewMemoryStore(nil)
	panicky := newMiddleware(t, Options{Keys: []string{v1}, Store: store}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	func() {
		defer func() { _ = recover() }()
		serve(panicky, signed(t, []string{v1}, "evt_p", time.Now(), `{}`))
	}()
	if st, _ := store.Claim(context.Background(), "evt_p", time.Minute); st != Claimed {
		t.Fatalf("after a panic the id is %v, want released", st)
	}
}

func TestMemoryStoreExpiry(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	s := NewMemoryStore(clk.Now)
	ctx := context.Background()
	if st, _ := s.Claim(ctx, "a", time.Minute); st != Claimed {
		t.Fatal(st)
	}
	if st, _ := s.Claim(ctx, "a", time.Minute); st != InFlight {
		t.Fatal(st)
	}
	clk.Add(time.Minute) // the lease ran out: a crashed handler does not block the id
	if st, _ := s.Claim(ctx, "a", time.Minute); st != Claimed {
		t.Fatalf("after the lease: %v", st)
	}
	_ = s.Done(ctx, "a", time.Hour)
	clk.Add(59 * time.Minute)
	if st, _ := s.Claim(ctx, "a", time.Minute); st != Processed {
		t.Fatalf("within ttl: %v", st)
	}
	clk.Add(time.Minute)
	for i := range 2000 {
		_, _ = s.Claim(ctx, string(rune('b'+i)), time.Second)
	}
	clk.Add(time.Hour)
	for i := range 1100 {
		_, _ = s.Claim(ctx, "z"+string(rune(i)), time.Second)
	}
	if n := s.Len(); n > 1200 {
		t.Fatalf("%d ids remembered, expired ones are not swept", n)
	}
}

// A MemoryStore never holds more ids than its bound: when full, a new id
// takes the place of an expired one first, else of the one closest to
// expiring; and expired ids go a few at a time with each write, not in a
// sweep of all of them.
func TestMemoryStoreBound(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, clk *clock, s *MemoryStore)
	}{
		{"bounded", func(t *testing.T, clk *clock, s *MemoryStore) {
			for i := range 1000 {
				_, _ = s.Claim(ctx, fmt.Sprint("id-", i), time.Hour)
				if n := s.Len(); n > 3 {
					t.Fatalf("%d ids remembered, at most 3 allowed", n)
				}
			}
		}},
		{"evicts the expired first", func(t *testing.T, clk *clock, s *MemoryStore) {
			_, _ = s.Claim(ctx, "short", time.Second)
			_, _ = s.Claim(ctx, "b", time.Hour)
			_ = s.Done(ctx, "b", 2*time.Hour)
			_, _ = s.Claim(ctx, "c", time.Hour)
			clk.Add(2 * time.Second)
			_, _ = s.Claim(ctx, "d", time.Hour)
			if st, _ := s.Claim(ctx, "b", time.Hour); st != Processed {
				t.Fatalf("b: %v, want still processed", st)
			}
			if st, _ := s.Claim(ctx, "c", time.Hour); st != InFlight {
				t.Fatalf("c: %v, want still in flight", st)
			}
		}},
		{"evicts the soonest to expire", func(t *testing.T, clk *clock, s *MemoryStore) {
			_, _ = s.Claim(ctx, "a", 3*time.Hour)
			_, _ = s.Claim(ctx, "soon", time.Hour)
			_, _ = s.Claim(ctx, "c", 2*time.Hour)
			_, _ = s.Claim(ctx, "d", time.Hour)
			if st, _ := s.Claim(ctx, "a", time.Hour); st != InFlight {
				t.Fatalf("a: %v, want kept", st)
			}
			if s.Len() != 3 {
				t.Fatalf("%d ids, want 3", s.Len())
			}
		}},
		{"released ids free their place", func(t *testing.T, clk *clock, s *MemoryStore) {
			for i := range 100 {
				id := fmt.Sprint("id-", i)
				_, _ = s.Claim(ctx, id, time.Hour)
				_ = s.Release(ctx, id)
			}
			if s.Len() != 0 {
				t.Fatalf("%d ids after releasing all", s.Len())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(0, 0)}
			tt.run(t, clk, NewMemoryStoreMax(clk.Now, 3))
		})
	}

	// Incremental expiry: many expired ids go with the writes that follow.
	clk := &clock{t: time.Unix(0, 0)}
	s := NewMemoryStore(clk.Now)
	for i := range 5000 {
		_, _ = s.Claim(ctx, fmt.Sprint("old-", i), time.Second)
	}
	clk.Add(time.Minute)
	for i := range 2000 {
		_, _ = s.Claim(ctx, fmt.Sprint("new-", i), time.Hour)
	}
	if n := s.Len(); n != 2000 {
		t.Fatalf("%d ids remembered, want the 2000 live ones", n)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{},
		{Keys: []string{"not-a-key"}},
		{Keys: []string{"whpk_AAAA"}},
		{Keys: []string{key(t, signature.SchemeV1)}, TTL: 9 * time.Minute},
	} {
		if _, err := Middleware(o); err == nil {
			t.Errorf("Middleware(%+v) accepted", o)
		}
	}
}

// End to end: hookline's sender POSTs to a server behind the middleware.
func TestWithHooklineSender(t *testing.T) {
	v1 := key(t, signature.SchemeV1)
	rc := &recorder{}
	srv := httptest.NewServer(newMiddleware(t, Options{Keys: []string{v1}}, rc))
	defer srv.Close()
	s := processors.NewSender(processors.SenderOptions{Destinations: processors.DestinationPolicy{AllowPrivate: true}})
	defer s.Close()
	ep := endpoints.Endpoint{ID: "ep", URL: srv.URL, Secrets: []string{v1}, Enabled: true}
	for range 2 {
		if res := s.Send(context.Background(), ep, "evt_1", time.Now(), []byte(`{"a":1}`)); res.Verdict != processors.Delivered {
			t.Fatalf("Send = %+v", res)
		}
	}
	if n := rc.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times for two deliveries of one event, want 1", n)
	}
}
