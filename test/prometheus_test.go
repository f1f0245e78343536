package test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/testenv"
)

// forDuration matches the for: of a rule, to shorten in the test copy.
var forDuration = regexp.MustCompile(`(?m)^(\s+for:) \S+$`)

// startPrometheus runs a Prometheus server through deploy/prometheus/
// prometheus.sh, on a port and in a directory of its own, that scrapes
// target every second with a copy of the alert rules whose for: durations
// are 10s.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := testenv.Prometheus(t)
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	short := forDuration.ReplaceAll(rules, []byte("$1 10s"))
	if !strings.Contains(string(short), "for: 10s") {
		t.Fatal("the test copy of alerts.yml has no for: to shorten")
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), short, 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: hookline
    static_configs:
      - targets: [%q]
`, filepath.Join(dir, "alerts.yml"), target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	script := func(cmd string) *exec.Cmd {
		c := exec.Command("bash", "../deploy/prometheus/prometheus.sh", cmd)
		c.Env = append(os.Environ(), "HOOKLINE_PROM_DIR="+dir, "HOOKLINE_PROM_PORT="+port,
			"HOOKLINE_PROM_CONFIG="+filepath.Join(dir, "prometheus.yml"), "HOOKLINE_PROM_BIN="+bin)
		return c
	}
	if out, err := script("start").CombinedOutput(); err != nil {
		t.Fatalf("prometheus.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := script("stop").CombinedOutput(); err != nil {
			t.Errorf("prometheus.sh stop: %v\n%s", err, out)
		}
	})
	return "http://127.0.0.1:" + port
}

// alertState is the state of the named alert in Prometheus' API: pending,
// firing, or "" when it is not active.
func alertState(t *testing.T, prom, name string) string {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("GET /api/v1/alerts: %s, %v", body.Status, err)
	}
	for _, a := range body.Data.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// A real Prometheus scraping a live `hookline serve` with the alert rules:
// a dead endpoint fills the DLQ and HooklineDLQNotEmpty goes pending, then
// firing; once the endpoint is back and the DLQ is replayed, the waiting
// figure drops to 0 and the alert resolves.
func TestPrometheusFiresAndResolvesTheDLQAlert(t *testing.T) {
	testenv.Prometheus(t)
	kafka := testenv.FreeAddr(t)
	prefix := fmt.Sprintf("p%d.", rand.IntN(1e6))
	proc := newServeProc(t, "--data-dir", t.TempDir(), "--kafka-listen", kafka, "--topic-prefix", prefix, "--max-attempts", "2")
	brokers := kafka
	if b := testBrokers(t); b != nil {
		brokers = strings.Join(b, ",")
	}
	proc.start()
	prom := startPrometheus(t, proc.args[4])

	var healthy atomic.Bool
	rc := newReceiver(t, func(string, int) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	if status, body, err := proc.post("/v1/endpoints", map[string]any{"id": "ep", "url": rc.url, "secret": rc.secret, "timeout_ms": 1000}); err != nil || status != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s %v", status, body, err)
	}
	const n = 3
	for i := range n {
		id := fmt.Sprintf("evt-%d", i)
		if status, body, err := proc.post("/v1/events", map[string]any{"id": id, "type": "test.event", "endpoint_id": "ep", "payload": map[string]int{"n": i}}); err != nil || status != http.StatusAccepted {
			t.Fatalf("send %s: %d %s %v", id, status, body, err)
		}
	}

	const alert = "HooklineDLQNotEmpty"
	var seen []string
	waitFor(t, 120*time.Second, alert+" firing", func() bool {
		s := alertState(t, prom, alert)
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == "firing"
	})
	if !strings.Contains(strings.Join(seen, ","), "pending,firing") {
		t.Errorf("%s went through %q, want pending before firing", alert, seen)
	}
	t.Logf("%s: %q", alert, seen)

	healthy.Store(true)
	out, err := exec.Command(hooklineBinary(t), "dlq", "replay", "--brokers", brokers, "--topic-prefix", prefix,
		"--replay-id", "prom-test", "--operator", "tester").CombinedOutput()
	if err != nil {
		t.Fatalf("hookline dlq replay: %v\n%s", err, out)
	}
	t.Logf("hookline dlq replay: %s", strings.TrimSpace(string(out)))
	waitFor(t, 60*time.Second, "every replayed event delivered", func() bool {
		_, counts, _ := rc.snapshot()
		return len(counts) == n
	})
	waitFor(t, 60*time.Second, alert+" resolved", func() bool { return alertState(t, prom, alert) == "" })
}
