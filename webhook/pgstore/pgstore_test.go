package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/signature"
)

// testPool is a pool on the test PostgreSQL (testenv.Postgres).
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 60
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

type receiver struct {
	t       *testing.T
	pool    *pgxpool.Pool
	store   *Store
	secret  string
	effects string // the business table the handler writes
	srv     *httptest.Server
}

func newReceiver(t *testing.T, h func(ctx context.Context, tx pgx.Tx, ev Event, effects string) error) *receiver {
	t.Helper()
	pool := testPool(t)
	n := rand.IntN(1e9)
	table, effects := fmt.Sprintf("processed_webhooks_test_%d", n), fmt.Sprintf("payments_test_%d", n)
	store, err := New(t.Context(), pool, Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+effects+" (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table+", "+effects)
	})
	secret, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	handler, err := store.Handler(HandlerOptions{Keys: []string{secret}}, func(ctx context.Context, tx pgx.Tx, ev Event) error {
		return h(ctx, tx, ev, effects)
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &receiver{t: t, pool: pool, store: store, secret: secret, effects: effects, srv: srv}
}

// deliver POSTs the signed event id as hookline would.
func (rc *receiver) deliver(id string) (int, string, error) {
	body := []byte(fmt.Sprintf(`{"id":%q,"type":"payment.succeeded","timestamp":"2026-12-01T10:00:00Z","data":{"amount":42}}`, id))
	req, err := http.NewRequest(http.MethodPost, rc.srv.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if err := signature.Headers(req.Header, []string{rc.secret}, id, time.Now(), body); err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func (rc *receiver) effectsOf(id string) int {
	rc.t.Helper()
	var n int
	if err := rc.pool.QueryRow(rc.t.Context(), "SELECT count(*) FROM "+rc.effects+" WHERE event_id = $1", id).Scan(&n); err != nil {
		rc.t.Fatal(err)
	}
	return n
}

func insertEffect(ctx context.Context, tx pgx.Tx, ev Event, effects string) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+effects+" (event_id) VALUES ($1)", ev.ID)
	return err
}

// 50 concurrent deliveries of one signed event: the handler's side effect
// happens exactly once; one answer says it was processed, every other is a
// 200 duplicate or a 409 with Retry-After.
func TestConcurrentDuplicatesRunTheHandlerOnce(t *testing.T) {
	rc := newReceiver(t, func(ctx context.Context, tx pgx.Tx, ev Event, effects string) error {
		// Long enough that the other deliveries arrive while it runs.
		time.Sleep(200 * time.Millisecond)
		return insertEffect(ctx, tx, ev, effects)
	})
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			status, body, err := rc.deliver("evt-dup")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				answers["error: "+err.Error()]++
				return
			}
			answers[fmt.Sprintf("%d %s", status, body)]++
		})
	}
	close(start)
	wg.Wait()
	t.Logf("answers: %v", answers)
	if got := rc.effectsOf("evt-dup"); got != 1 {
		t.Fatalf("side effect happened %d times, want once", got)
	}
	if answers[`200 {"duplicate":false}`] != 1 {
		t.Errorf("%d answers say processed, want 1", answers[`200 {"duplicate":false}`])
	}
	for a, c := range answers {
		if a != `200 {"duplicate":false}` && a != `200 {"duplicate":true}` && !strings.HasPrefix(a, "409 ") {
			t.Errorf("%d answers %q, want only 200 duplicate or 409", c, a)
		}
	}
	if status, body, _ := rc.deliver("evt-dup"); status != http.StatusOK || body != `{"duplicate":true}` {
		t.Errorf("a later repeat got %d %s, want 200 duplicate", status, body)
	}
}

// A handler that fails rolls its side effect back and leaves the event
// retryable: the next delivery runs it again, and it then succeeds once.
func TestFailingHandlerGetsTheEventAgainAndSucceedsOnce(t *testing.T) {
	calls := 0
	rc := newReceiver(t, func(ctx context.Context, tx pgx.Tx, ev Event, effects string) error {
		calls++
		if err := insertEffect(ctx, tx, ev, effects); err != nil {
			return err
		}
		if calls == 1 {
			return errors.New("the payment service is down")
		}
		return nil
	})
	if status, _, err := rc.deliver("evt-fail"); err != nil || status != http.StatusInternalServerError {
		t.Fatalf("first delivery: %d, %v; want 500", status, err)
	}
	if got := rc.effectsOf("evt-fail"); got != 0 {
		t.Fatalf("after the failure the side effect is there %d times, want rolled back", got)
	}
	if status, body, _ := rc.deliver("evt-fail"); status != http.StatusOK || body != `{"duplicate":false}` {
		t.Fatalf("retry: %d %s, want 200 processed", status, body)
	}
	if status, body, _ := rc.deliver("evt-fail"); status != http.StatusOK || body != `{"duplicate":true}` {
		t.Fatalf("repeat: %d %s, want 200 duplicate", status, body)
	}
	if got := rc.effectsOf("evt-fail"); got != 1 || calls != 2 {
		t.Fatalf("side effect %d times over %d handler calls, want once over 2", got, calls)
	}
}

// A request that fails verification reaches neither the table nor the
// handler.
func TestUnverifiedRequestsAreRefused(t *testing.T) {
	called := false
	rc := newReceiver(t, func(ctx context.Context, tx pgx.Tx, ev Event, effects string) error {
		called = true
		return nil
	})
	resp, err := http.Post(rc.srv.URL, "application/json", strings.NewReader(`{"id":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || called {
		t.Fatalf("unsigned request: %d, handler called %v; want 400 and not called", resp.StatusCode, called)
	}
}

// Cleanup deletes the rows whose TTL passed and keeps the others.
func TestCleanupDeletesExpiredRows(t *testing.T) {
	pool := testPool(t)
	now := time.Now()
	table := fmt.Sprintf("processed_webhooks_test_%d", rand.IntN(1e9))
	s, err := New(t.Context(), pool, Options{Table: table, TTL: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	noop := func(context.Context, pgx.Tx, Event) error { return nil }
	for _, id := range []string{"old-1", "old-2"} {
		if _, err := s.Process(t.Context(), Event{ID: id}, noop); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.Process(t.Context(), Event{ID: "new"}, noop); err != nil {
		t.Fatal(err)
	}
	n, err := s.Cleanup(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Cleanup = %d, %v; want the 2 expired rows", n, err)
	}
	if out, err := s.Process(t.Context(), Event{ID: "new"}, noop); err != nil || out != Duplicate {
		t.Fatalf("the unexpired id after cleanup: %v, %v; want Duplicate", out, err)
	}
}
