package test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// hooklineBinary builds cmd/hookline once per test run.
func hooklineBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookline-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hookline")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/hookline/hookline/cmd/hookline").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serveProc is one `hookline serve` process.
type serveProc struct {
	t    *testing.T
	args []string
	api  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	// exited is closed once cmd has exited, with its error in waitErr.
	exited  chan struct{}
	waitErr error
}

func newServeProc(t *testing.T, extra ...string) *serveProc {
	api, metrics := testenv.FreeAddr(t), testenv.FreeAddr(t)
	args := append([]string{"serve",
		"--listen", api, "--metrics-listen", metrics,
		"--tier-scale", strconv.FormatFloat(testScale, 'f', -1, 64),
		"--partitions", "4", "--shutdown-grace", "5s", "--log-level", serveLogLevel(),
		// local receivers on 127.0.0.1, refused by the SSRF guard by default
		"--allow-private-destinations",
	}, extra...)
	if b := testBrokers(t); b != nil {
		args = append(args, "--brokers", b[0])
	}
	return &serveProc{t: t, args: args, api: "http://" + api}
}

func (s *serveProc) start() {
	s.t.Helper()
	if s.log == nil {
		s.log = new(bytes.Buffer) // kept across restarts
	}
	s.cmd = exec.Command(hooklineBinary(s.t), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd, exited := s.cmd, make(chan struct{})
	s.exited = exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	s.t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	metrics := s.args[4]
	var last string
	began := time.Now()
	deadline := began.Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + metrics + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.t.Logf("serve ready after %v", time.Since(began).Round(time.Millisecond))
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			s.t.Fatalf("serve exited before it was ready (%v); serve's log:\n%s", s.waitErr, s.log)
		default:
		}
		if time.Now().After(deadline) {
			s.kill() // its log is complete once it has exited
			s.t.Fatalf("timed out after 60s waiting for serve /readyz; it last said: %s\nserve's log:\n%s", last, s.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *serveProc) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *serveProc) post(path string, v any) (int, []byte, error) {
	body, _ := json.Marshal(v)
	resp, err := http.Post(s.api+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, nil
}

// SIGKILL `hookline serve` in the middle of a run, twice, and start it again
// on the same data dir: every accepted event is delivered or dead-lettered.
func TestServeKilledMidRunLosesNothing(t *testing.T) {
	dataDir := t.TempDir()
	kafka := testenv.FreeAddr(t)
	prefix := fmt.Sprintf("r%d.", rand.IntN(1e6))
	proc := newServeProc(t, "--data-dir", dataDir, "--kafka-listen", kafka, "--instance-id", "restart-test", "--topic-prefix", prefix)
	brokers := []string{kafka}
	if b := testBrokers(t); b != nil {
		brokers = b
	}
	proc.start()

	healthy := newReceiver(t, nil)
	flaky := newReceiver(t, func(string, int) int {
		if rand.Float64() < 0.3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	dead := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	rcs := map[string]*receiver{"healthy": healthy, "flaky": flaky, "dead": dead}
	for id, rc := range rcs {
		status, body, err := proc.post("/v1/endpoints", map[string]any{"id": id, "url": rc.url, "secret": rc.secret, "timeout_ms": 1000})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create endpoint %s: %d %s %v", id, status, body, err)
		}
	}

	const n = 1500
	ids := []string{"healthy", "flaky", "dead"}
	accepted := make(map[string]string) // event id -> endpoint
	killAt := map[int]bool{400 + rand.IntN(200): true, 900 + rand.IntN(200): true}
	kills := 0
	for i := 0; i < n; i++ {
		if killAt[i] {
			proc.kill()
			kills++
			proc.start()
		}
		id := fmt.Sprintf("evt-%05d", i)
		ep := ids[i%len(ids)]
		status, body, err := proc.post("/v1/events", map[string]any{"id": id, "type": "test.event", "endpoint_id": ep, "payload": map[string]int{"n": i}})
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("send %s: %d %s %v", id, status, body, err)
		}
		accepted[id] = ep
	}

	// Settle: delivered (a 2xx answer) or dead-lettered (committed in the DLQ).
	dlqTopic := prefix + "dlq"
	var inDLQ map[string]bool
	var dlqTwice int
	deadline := time.Now().Add(90 * time.Second)
	for {
		inDLQ = make(map[string]bool)
		dlqTwice = 0
		for _, r := range readTopic(t, brokers, dlqTopic, 1<<30, 2*time.Second) {
			st, err := processors.ParseRetryState(r.Headers)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(r.Value, &ev)
			if _, seen := inDLQ[ev.ID]; seen {
				dlqTwice++
			}
			inDLQ[ev.ID] = st.EndpointID != ""
		}
		lost := 0
		for id := range accepted {
			if !deliveredTo(rcs[accepted[id]], id) && !inDLQ[id] {
				lost++
			}
		}
		if lost == 0 || time.Now().After(deadline) {
			delivered, dup := 0, 0
			for id, ep := range accepted {
				_, counts, _ := rcs[ep].snapshot()
				if deliveredTo(rcs[ep], id) {
					delivered++
				}
				if ep == "healthy" && counts[id] > 1 {
					dup += counts[id] - 1
				}
			}
			testreport.Figures(t, "serve killed %d times: sent %d, delivered %d, dead-lettered %d, lost %d, repeated deliveries to the healthy endpoint %d, DLQ records repeated %d",
				kills, len(accepted), delivered, len(inDLQ), lost, dup, dlqTwice)
			if lost > 0 {
				t.Fatalf("%d accepted events neither delivered nor dead-lettered", lost)
			}
			// A SIGKILL of serve kills the embedded broker with it and can
			// tear a transaction (its markers persisted, its offset commit
			// not); the next owner's hand-off audit must keep the chain
			// exactly-once all the same.
			// The whole chain, read_committed: no tier or DLQ record twice.
			// An attempt record can repeat after a torn transaction (same
			// attempt id; docs/reliability.md), so it is only reported.
			c := readChain(t, brokers, chaosTopics(prefix, 4), true)
			testreport.Figures(t, "serve killed: read_committed duplicates: tier records %d, DLQ records %d, attempt records %d",
				dups(c.tier), dups(c.dlq), dups(c.attempts))
			if dlqTwice+dups(c.tier) > 0 {
				t.Errorf("hand-offs committed twice: %d DLQ records, %d tier records", dlqTwice, dups(c.tier))
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.exited:
		if proc.waitErr != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", proc.waitErr, proc.log)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("serve did not stop within 20s of SIGTERM")
	}
	// The runner logs each assignment whose audit found a torn transaction.
	t.Logf("assignments that found a torn transaction's records already handed on: %d",
		strings.Count(proc.log.String(), "torn transaction"))
}

// deliveredTo reports whether rc answered a request for id with 2xx. The
// flaky receiver answers at random, so it keeps its own answers.
func deliveredTo(rc *receiver, id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ok[id] > 0
}

// `hookline serve` with its embedded broker, SIGKILLed 20 times (40 in make
// chaos) at random
// moments (0.3–2 s after each restart is ready) while events stream in and
// move through the tiers: the broker dies with the process, mid-transaction
// more often than not. Nothing is lost, and read with read_committed no tier
// or DLQ record is in the chain twice (the hand-off audit and the per-start
// transactional ids; docs/reliability.md).
func TestEmbeddedBrokerKilledRepeatedlyKeepsTheChainExactlyOnce(t *testing.T) {
	if testBrokers(t) != nil {
		t.Skip("kills the embedded broker: runs without HOOKLINE_TEST_BROKERS")
	}
	kills := failureSize(20, 40)
	dataDir, kafka := t.TempDir(), testenv.FreeAddr(t)
	if d := os.Getenv("HOOKLINE_TEST_LOG_DIR"); d != "" {
		// Kept with the logs: the broker's files show what a crash left.
		var err error
		if dataDir, err = os.MkdirTemp(d, "kill-loop-data-*"); err != nil {
			t.Fatal(err)
		}
		t.Logf("embedded broker data in %s", dataDir)
	}
	prefix := chaosPrefix(t)
	proc := newServeProc(t, "--data-dir", dataDir, "--kafka-listen", kafka, "--instance-id", "kill-loop", "--topic-prefix", prefix)
	proc.start()
	fl := newFleet(t)
	fl.add("healthy", nil)
	fl.add("flaky", flaky(0.5))
	fl.add("dead", func(string, int) int { return http.StatusInternalServerError })
	fl.registerAt(proc.api, time.Second)

	// The sender posts events at a steady pace and retries each one until
	// it is accepted (a repeat of an accepted id is a duplicate, counted once).
	var (
		mu       sync.Mutex
		accepted = make(map[string]string)
	)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			id, ep := fmt.Sprintf("evt-%06d", i), fl.ids[i%len(fl.ids)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, _, err := proc.post("/v1/events", map[string]any{"id": id, "type": "test.event", "endpoint_id": ep, "payload": map[string]int{"n": i}})
				if err == nil && status == http.StatusAccepted {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			accepted[id] = ep
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	began := time.Now()
	for range kills {
		time.Sleep(time.Duration(300+rand.IntN(1700)) * time.Millisecond)
		proc.kill()
		proc.start()
	}
	close(stop)
	<-sent

	set := chaosTopics(prefix, 4)
	f, c := settle(t, []string{kafka}, set, accepted, fl.delivered, 2*time.Minute)
	testreport.Figures(t, "embedded broker killed %d times over %v: %v", kills, time.Since(began).Round(time.Second), f)
	proc.kill() // its log is read below
	t.Logf("assignments that found a torn transaction's records already handed on: %d",
		strings.Count(proc.log.String(), "torn transaction"))
	// What the hand-off audit and the crash repair said, for a run that
	// finds a duplicate: an audit that could not finish leaves its
	// partition unguarded.
	logAuditLines(t, proc.log.String())
	if f.lost > 0 {
		t.Errorf("%d events neither delivered nor in the DLQ", f.lost)
	}
	// Attempt records may repeat after a torn transaction (same attempt id).
	if f.dupTier+f.dupDLQ > 0 {
		logDuplicates(t, []string{kafka}, c)
		keepLog(t, "kill-loop", proc.log.Bytes())
		t.Errorf("hand-offs committed twice: tier %d, DLQ %d", f.dupTier, f.dupDLQ)
	}
}

// logAuditLines logs serve's lines about the hand-off audit, the torn
// transactions it found and the embedded broker's crash repair.
func logAuditLines(t *testing.T, log string) {
	t.Helper()
	n := 0
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "hand-off audit") && !strings.Contains(line, "torn transaction") && !strings.Contains(line, "crash cut") {
			continue
		}
		if n++; n <= 40 || serveLogLevel() == "debug" {
			t.Log(strings.TrimSpace(line))
		}
	}
	t.Logf("serve logged %d lines about the hand-off audit and crash repair", n)
}

// serveLogLevel is the --log-level of the serve processes these tests
// start: warn, or HOOKLINE_TEST_LOG_LEVEL as for the chaos nodes (debug
// shows what the hand-off audit read at each assignment).
func serveLogLevel() string {
	return cmp.Or(os.Getenv("HOOKLINE_TEST_LOG_LEVEL"), "warn")
}

// keepLog writes a failed run's serve log where it outlives the test
// (HOOKLINE_TEST_LOG_DIR, or the system's temporary directory) and says
// where.
func keepLog(t *testing.T, name string, log []byte) {
	t.Helper()
	f, err := os.CreateTemp(os.Getenv("HOOKLINE_TEST_LOG_DIR"), "hookline-"+name+"-*.log")
	if err == nil {
		_, err = f.Write(log)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Logf("keep serve log: %v", err)
		return
	}
	t.Logf("serve log kept in %s", f.Name())
}
