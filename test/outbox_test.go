package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

// outboxTable creates an outbox table of the test's own with `hookline
// migrate --postgres`, and drops it at the end.
func outboxTable(t *testing.T, dsn string) string {
	t.Helper()
	table := fmt.Sprintf("outbox_e2e_%d", rand.IntN(1e9))
	out, err := exec.Command(hooklineBinary(t), "migrate", "--postgres", dsn, "--outbox-table", table).CombinedOutput()
	if err != nil {
		t.Fatalf("hookline migrate --postgres: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		_, _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
	})
	return table
}

// relayProc is one `hookline outbox` process slot.
type relayProc struct {
	t       *testing.T
	args    []string
	metrics string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

func newRelayProc(t *testing.T, h *harness, dsn, table string) *relayProc {
	metrics := testenv.FreeAddr(t)
	return &relayProc{t: t, metrics: metrics, args: []string{"outbox",
		"--postgres", dsn, "--outbox-table", table,
		"--brokers", strings.Join(h.env.Brokers, ","), "--topic-prefix", h.cfg.TopicPrefix,
		"--partitions", fmt.Sprint(h.cfg.Partitions),
		"--metrics-listen", metrics, "--outbox-poll", "50ms", "--log-level", "warn",
	}}
}

func (p *relayProc) start() {
	p.t.Helper()
	cmd := exec.Command(hooklineBinary(p.t), p.args...)
	logf, err := os.CreateTemp(p.t.TempDir(), "relay-*.log")
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	p.t.Cleanup(p.kill)
}

func (p *relayProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// active reads hookline_outbox_active from the relay's /metrics.
func (p *relayProc) active() bool {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "hookline_outbox_active 1" {
			return true
		}
	}
	return false
}

// outboxProducers writes total rows from n concurrent producers, each in
// transactions of 1 to 20 rows, a third of them held open 50-300 ms after
// their inserts, so that commits come out of seq order. Each producer owns
// its keys and writes each key's rows in order, one transaction after
// another. It returns the ids written, with their ordering keys.
func outboxProducers(ctx context.Context, dsn, table string, n, total int) (map[string]string, error) {
	var (
		mu   sync.Mutex
		ids  = make(map[string]string, total)
		errs = make(chan error, n)
		wg   sync.WaitGroup
	)
	per := total / n
	for p := range n {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = conn.Close(context.Background()) }()
			seqOf := make(map[string]int)
			for written := 0; written < per; {
				size := min(1+rand.IntN(20), per-written)
				tx, err := conn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				for range size {
					key := fmt.Sprintf("p%d-k%d", p, rand.IntN(10))
					id := fmt.Sprintf("p%d-%d", p, written)
					seqOf[key]++
					payload := fmt.Sprintf(`{"key":%q, "n":%d}`, key, seqOf[key])
					if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, type, endpoint_id, ordering_key, payload) VALUES ($1, 'outbox.test', 'ep', $2, $3)",
						id, key, payload); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ids[id] = key
					mu.Unlock()
					written++
				}
				if rand.IntN(3) == 0 {
					time.Sleep(randBetween(50*time.Millisecond, 300*time.Millisecond))
				}
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return ids, nil
}

// startOutboxProducers runs outboxProducers in the background; wait
// returns the ids written, failing the test on an error.
func startOutboxProducers(ctx context.Context, dsn, table string, n, total int) (wait func(t *testing.T) map[string]string) {
	type result struct {
		ids map[string]string
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := outboxProducers(ctx, dsn, table, n, total)
		done <- result{ids, err}
	}()
	return func(t *testing.T) map[string]string {
		t.Helper()
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.ids
	}
}

// settleOutbox waits until rc got every id, then checks the events topic
// and the deliveries (outboxFigures).
func settleOutbox(t *testing.T, h *harness, rc *receiver, ids map[string]string, within time.Duration) (dupTopic, lost, disorder int) {
	t.Helper()
	waitFor(t, within, "every outbox row delivered", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) >= len(ids)
	})
	return outboxFigures(t, h, rc, ids)
}

// outboxFigures checks what reached the events topic and the endpoint:
// every id once in the topic (read_committed), every id delivered, and the
// events of each key in order in both.
func outboxFigures(t *testing.T, h *harness, rc *receiver, ids map[string]string) (dupTopic, lost, disorder int) {
	t.Helper()
	type keyed struct {
		Key string `json:"key"`
		N   int    `json:"n"`
	}
	order := func(last map[string]int, payload []byte) {
		var k keyed
		if err := json.Unmarshal(payload, &k); err != nil {
			t.Fatalf("payload %s: %v", payload, err)
		}
		if k.N <= last[k.Key] {
			disorder++
		}
		last[k.Key] = k.N
	}
	seen := make(map[string]int)
	topicLast := make(map[string]int)
	for _, r := range h.readTopic(h.env.Topics.Events, len(ids)+1, 5*time.Second) {
		ev, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatalf("events topic: %v", err)
		}
		if _, ok := ids[ev.ID]; !ok {
			continue
		}
		seen[ev.ID]++
		order(topicLast, ev.Payload)
	}
	hits, counts, _ := rc.snapshot()
	for id := range ids {
		if counts[id] == 0 {
			lost++
		}
		dupTopic += max(seen[id]-1, 0)
	}
	gotLast := make(map[string]int)
	firstHit := make(map[string]bool)
	for _, hit := range hits {
		if firstHit[hit.id] {
			continue
		}
		firstHit[hit.id] = true
		order(gotLast, []byte(dataOf(t, hit.body)))
	}
	return dupTopic, lost, disorder
}

// 8 producers write 20,000 outbox rows in interleaved long and short
// transactions (commits out of seq order) while the relay is SIGKILLed 5
// times and restarted: every row reaches the endpoint, the events topic
// holds each row once, and each key's events stay in order.
func TestOutboxRelayKilledRepeatedlyLosesAndRepeatsNothing(t *testing.T) {
	dsn := testenv.Postgres(t)
	const total, producers, kills = 20000, 8, 5
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil)
	h.addEndpoint("ep", rc, 5*time.Second)
	table := outboxTable(t, dsn)
	relay := newRelayProc(t, h, dsn, table)
	relay.start()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := startOutboxProducers(ctx, dsn, table, producers, total)
	began := time.Now()
	// The producers take about 40 s; the kills land across that time.
	for range kills {
		time.Sleep(randBetween(time.Second, 6*time.Second))
		relay.kill()
		relay.start()
	}
	ids := wait(t)
	dup, lost, disorder := settleOutbox(t, h, rc, ids, 3*time.Minute)
	testreport.Figures(t, "outbox relay killed %d times over %v: rows %d from %d producers, delivered %d, lost %d, events-topic duplicates %d, out of order %d",
		kills, time.Since(began).Round(time.Second), len(ids), producers, len(ids)-lost, lost, dup, disorder)
	if len(ids) != total || lost+dup+disorder > 0 {
		t.Errorf("rows %d (want %d): lost %d, duplicated in the events topic %d, out of order %d", len(ids), total, lost, dup, disorder)
	}
}

// Two relays on one table: one is active; when it is SIGKILLed the other
// takes over within 30 s, and nothing is lost or doubled.
func TestOutboxStandbyRelayTakesOverWhenTheActiveDies(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := start(t, testConfig(t))
	rc := newReceiver(t, nil)
	h.addEndpoint("ep", rc, 5*time.Second)
	table := outboxTable(t, dsn)
	a, b := newRelayProc(t, h, dsn, table), newRelayProc(t, h, dsn, table)
	a.start()
	waitFor(t, 30*time.Second, "relay a active", a.active)
	b.start()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := startOutboxProducers(ctx, dsn, table, 4, 4000)
	time.Sleep(time.Second)
	if b.active() {
		t.Fatal("both relays report active")
	}
	a.kill()
	killed := time.Now()
	waitFor(t, 30*time.Second, "relay b takes over", b.active)
	takeOver := time.Since(killed)
	ids := wait(t)
	dup, lost, disorder := settleOutbox(t, h, rc, ids, 2*time.Minute)
	testreport.Figures(t, "outbox fail-over: standby active %v after the active relay's SIGKILL; rows %d, delivered %d, lost %d, events-topic duplicates %d, out of order %d",
		takeOver.Round(10*time.Millisecond), len(ids), len(ids)-lost, lost, dup, disorder)
	if lost+dup+disorder > 0 {
		t.Errorf("lost %d, duplicated in the events topic %d, out of order %d", lost, dup, disorder)
	}
}

// serve --outbox-postgres runs the relay inside serve: rows committed to
// the outbox table reach the endpoint.
func TestServeRelaysItsOutbox(t *testing.T) {
	dsn := testenv.Postgres(t)
	table := outboxTable(t, dsn)
	kafka := testenv.FreeAddr(t)
	proc := newServeProc(t, "--data-dir", t.TempDir(), "--kafka-listen", kafka, "--topic-prefix", fmt.Sprintf("o%d.", rand.IntN(1e6)),
		"--outbox-postgres", dsn, "--outbox-table", table, "--outbox-poll", "50ms")
	proc.start()
	rc := newReceiver(t, nil)
	status, body, err := proc.post("/v1/endpoints", map[string]any{"id": "ep", "url": rc.url, "secret": rc.secret})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s %v", status, body, err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	const n = 50
	for i := range n {
		if _, err := conn.Exec(t.Context(), "INSERT INTO "+table+" (id, type, endpoint_id, payload) VALUES ($1, 'outbox.test', 'ep', $2)",
			fmt.Sprintf("row-%d", i), fmt.Sprintf(`{"n": %d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, "every row delivered", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == n
	})
	hits, _, bad := rc.snapshot()
	if bad != 0 {
		t.Errorf("%d requests failed verification", bad)
	}
	for _, h := range hits {
		var i int
		if _, err := fmt.Sscanf(h.id, "row-%d", &i); err != nil {
			t.Errorf("webhook-id %q is not row-<n>: %v", h.id, err)
			continue
		}
		if got, want := dataOf(t, h.body), fmt.Sprintf(`{"n": %d}`, i); got != want {
			t.Errorf("%s: payload %s, want %s byte for byte", h.id, got, want)
		}
	}
}
