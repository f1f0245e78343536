package processors

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// received is one request as an endpoint saw it.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is an httptest endpoint that records requests and answers with
// handle.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Method, r.Header.Clone(), body})
		rc.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func status(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func TestSenderSignsWithAllSecrets(t *testing.T) {
	oldSecret, newSecretV := newSecret(t), newSecret(t)
	rc := newReceiver(t, status(http.StatusNoContent))
	s := NewSender(SenderOptions{Destinations: localOnly})
	defer s.Close()
	ep := endpoints.Endpoint{ID: "ep_1", URL: rc.URL, Secrets: []string{oldSecret, newSecretV}, Enabled: true}
	ts := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1","data":{}}`)

	res := s.Send(context.Background(), ep, "evt_1", ts, body)
	if res.Verdict != Delivered || res.StatusCode != 204 || res.Err != nil {
		t.Fatalf("Send = %+v, want delivered 204", res)
	}
	if res.RequestBytes != len(body) {
		t.Errorf("RequestBytes = %d, want %d", res.RequestBytes, len(body))
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("endpoint got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.method != http.MethodPost || got.header.Get("Content-Type") != "application/json" || got.header.Get("User-Agent") != "hookline/1" {
		t.Errorf("request %s, Content-Type %q, User-Agent %q", got.method, got.header.Get("Content-Type"), got.header.Get("User-Agent"))
	}
	if !bytes.Equal(got.body, body) || got.header.Get("webhook-id") != "evt_1" {
		t.Errorf("body %q, webhook-id %q", got.body, got.header.Get("webhook-id"))
	}
	// A receiver that knows only one of the secrets accepts the request.
	for _, secret := range []string{oldSecret, newSecretV} {
		if err := signature.Verify([]string{secret}, got.header, got.body, time.Minute, ts); err != nil {
			t.Errorf("receiver verify: %v", err)
		}
	}
}

func TestSenderOutcomes(t *testing.T) {
	secret := newSecret(t)
	tests := []struct {
		name       string
		handle     func(http.ResponseWriter, *http.Request)
		timeoutMS  int
		verdict    Verdict
		class      ErrorClass
		status     int
		retryAfter time.Duration
		respBytes  int
	}{
		{name: "200 with body", handle: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }, verdict: Delivered, class: ClassNone, status: 200, respBytes: 2},
		{name: "500", handle: status(500), verdict: Retryable, class: ClassHTTP5xx, status: 500},
		{name: "410", handle: status(410), verdict: Gone, class: ClassHTTP410, status: 410},
		{name: "400", handle: status(400), verdict: Permanent, class: ClassHTTP4xx, status: 400},
		{name: "429 with Retry-After", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, verdict: Retryable, class: ClassHTTP429, status: 429, retryAfter: 2 * time.Minute},
		{name: "503 with Retry-After", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}, verdict: Retryable, class: ClassHTTP5xx, status: 503, retryAfter: 7 * time.Second},
		{name: "409 with Retry-After", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(409)
		}, verdict: Retryable, class: ClassHTTP409, status: 409, retryAfter: 5 * time.Second},
		{name: "Retry-After ignored on 500", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(500)
		}, verdict: Retryable, class: ClassHTTP5xx, status: 500},
		{name: "hanging endpoint times out", handle: func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			timeoutMS: 50, verdict: Retryable, class: ClassTimeout},
		{name: "huge streamed body is cut", handle: func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, verdict: Delivered, class: ClassNone, status: 200, respBytes: MaxResponseBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.handle)
			s := NewSender(SenderOptions{Destinations: localOnly})
			defer s.Close()
			ep := endpoints.Endpoint{ID: "ep", URL: rc.URL, Secrets: []string{secret}, TimeoutMS: tt.timeoutMS, Enabled: true}
			if tt.timeoutMS == 0 {
				ep.TimeoutMS = 10_000
			}
			res := s.Send(context.Background(), ep, "evt_1", time.Now(), []byte(`{}`))
			if res.Verdict != tt.verdict || res.Class != tt.class || res.StatusCode != tt.status {
				t.Fatalf("Send = %v %q status %d (err %v), want %v %q status %d", res.Verdict, res.Class, res.StatusCode, res.Err, tt.verdict, tt.class, tt.status)
			}
			if res.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", res.RetryAfter, tt.retryAfter)
			}
			if res.ResponseBytes != tt.respBytes {
				t.Errorf("ResponseBytes = %d, want %d", res.ResponseBytes, tt.respBytes)
			}
			if (res.Err != nil) != (tt.status == 0) {
				t.Errorf("Err = %v with status %d", res.Err, res.StatusCode)
			}
		})
	}
}

func TestSenderDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	})
	s := NewSender(SenderOptions{Destinations: localOnly})
	defer s.Close()

	res := s.Send(context.Background(), endpoints.Endpoint{ID: "ep", URL: rc.URL, Secrets: []string{newSecret(t)}}, "evt", time.Now(), []byte(`{}`))
	if res.StatusCode != 307 || res.Verdict != Retryable || res.Class != ClassHTTP3xx {
		t.Fatalf("Send = %+v, want 307 retryable http_3xx", res)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
}

func TestSenderConnectionRefused(t *testing.T) {
	addr := closedAddr(t)
	s := NewSender(SenderOptions{Destinations: localOnly})
	defer s.Close()
	url := "http://" + addr + "/hooks?token=s3cr3t"
	res := s.Send(context.Background(), endpoints.Endpoint{ID: "ep", URL: url, Secrets: []string{newSecret(t)}}, "evt", time.Now(), []byte(`{}`))
	if res.Verdict != Retryable || res.Class != ClassConnection || res.Err == nil || res.StatusCode != 0 {
		t.Fatalf("Send = %+v, want retryable connection error", res)
	}
	if msg := res.Failure(); strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, "endpoint ep") {
		t.Fatalf("error %q: want it to name the endpoint, not its URL's token", msg)
	}
}

func TestSenderRefusesToSendUnsigned(t *testing.T) {
	rc := newReceiver(t, status(200))
	s := NewSender(SenderOptions{Destinations: localOnly})
	defer s.Close()
	for _, secrets := range [][]string{nil, {"whsec_tooshort"}} {
		res := s.Send(context.Background(), endpoints.Endpoint{ID: "ep", URL: rc.URL, Secrets: secrets}, "evt", time.Now(), []byte(`{}`))
		if res.Verdict != Permanent || res.Class != ClassNoSecret || !res.Skipped {
			t.Fatalf("secrets %q: Send = %+v, want a skipped permanent no_secret", secrets, res)
		}
		if strings.Contains(res.Failure(), "tooshort") {
			t.Fatalf("error %q leaks the secret", res.Failure())
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("endpoint got %d unsigned requests", n)
	}
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestSenderReusesConnectionsOfABusyEndpoint holds every request of a round
// at the endpoint until all conc have arrived, so conc connections are in
// use at once, as when every worker of every partition of a stage posts to
// one endpoint. With an idle pool of conc they are all kept for the next
// round; with a smaller one each round closes and dials the difference.
func TestSenderReusesConnectionsOfABusyEndpoint(t *testing.T) {
	const conc, rounds = 256, 4
	var dials atomic.Int64
	var mu sync.Mutex
	arrived, gate := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		g := gate
		if arrived == conc {
			close(g)
		}
		mu.Unlock()
		select {
		case <-g:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := NewSender(SenderOptions{Destinations: localOnly, MaxIdleConnsPerHost: conc})
	defer s.Close()
	ep := endpoints.Endpoint{ID: "ep_busy", URL: srv.URL, Secrets: []string{newSecret(t)}, Enabled: true, TimeoutMS: 60_000}
	body := []byte(`{"id":"evt_1","data":{}}`)
	var failed atomic.Int64
	for range rounds {
		mu.Lock()
		arrived, gate = 0, make(chan struct{})
		mu.Unlock()
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				if res := s.Send(context.Background(), ep, "evt_1", time.Now(), body); res.Verdict != Delivered {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests not delivered", n, conc*rounds)
	}
	// The first round dials conc; a later request may dial once more when
	// it is sent before the connection of an ended one is back in the pool.
	// A pool of 64 dials at least conc + (rounds-1) x (conc-64) = 832.
	if n := dials.Load(); n > 2*conc {
		t.Errorf("%d connections dialed for %d requests, %d at a time; want at most %d: connections are not reused", n, conc*rounds, conc, 2*conc)
	}
	t.Logf("%d connections for %d requests", dials.Load(), conc*rounds)
}
