package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
)

// ScaleResult is what `hookline bench --scenario scale --json` prints.
type ScaleResult struct {
	Scenario    string `json:"scenario"`
	Events      int    `json:"events"`
	Keys        int    `json:"keys"`
	Partitions  int    `json:"partitions"`
	Concurrency int    `json:"concurrency"`
	Broker      string `json:"broker"`
	// OnePerSecond is the deliveries/s of one serve process alone.
	OnePerSecond float64 `json:"one_process_deliveries_per_second"`
	// Processes is how many serve processes ran the second phase, EachPerSecond
	// the deliveries/s of each there, TogetherPerSecond all of theirs.
	Processes         int       `json:"processes"`
	EachPerSecond     []float64 `json:"each_process_deliveries_per_second"`
	TogetherPerSecond float64   `json:"together_deliveries_per_second"`
	// EachPeakRSSBytes is each serve process's peak RSS at the end.
	EachPeakRSSBytes []int64 `json:"each_process_peak_rss_bytes"`
	Speedup          float64 `json:"speedup"`
	// ReceiverRawPerSecond is the receiver's raw capacity: loopback POSTs of
	// the pipeline's signed body from this process at the pipeline's
	// concurrency, measured in the same run with the serve processes
	// stopped. ReceiverHeadroom is it over TogetherPerSecond: well above 1,
	// the receiver was not what bounded the processes.
	ReceiverRawPerSecond float64 `json:"receiver_raw_posts_per_second"`
	ReceiverHeadroom     float64 `json:"receiver_headroom"`
	GOMAXPROCS           int     `json:"gomaxprocs"`
}

func (r ScaleResult) table(w io.Writer) {
	fmt.Fprintf(w, "%d events per phase, %d keys, %d partitions x %d, broker %s\n", r.Events, r.Keys, r.Partitions, r.Concurrency, r.Broker)
	fmt.Fprintf(w, "one serve process        %8.0f deliveries/s\n", r.OnePerSecond)
	for i, v := range r.EachPerSecond {
		fmt.Fprintf(w, "  process %d of %d         %8.0f deliveries/s", i+1, r.Processes, v)
		if i < len(r.EachPeakRSSBytes) {
			fmt.Fprintf(w, ", peak RSS %s", mib(r.EachPeakRSSBytes[i]))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d serve processes        %8.0f deliveries/s (x%.2f)\nreceiver raw capacity    %8.0f posts/s (%.1f x what the processes reached)\n",
		r.Processes, r.TogetherPerSecond, r.Speedup, r.ReceiverRawPerSecond, r.ReceiverHeadroom)
}

// benchScale runs `hookline serve` child processes on the given Kafka: one
// alone for a batch of events, then --children of them in the same consumer
// groups for another, counting each one's deliveries from its metrics.
func benchScale(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error) {
	if cfg.Embedded() {
		return nil, errors.New("--scenario scale needs a real Kafka: give --brokers host:port (the embedded broker lives inside one process, and scaling out means serve processes sharing one cluster)")
	}
	if o.children < 2 {
		return nil, errors.New("--children must be at least 2")
	}
	freshTopicPrefix(&cfg, o.scenario)
	exe, err := o.executable()
	if err != nil {
		return nil, fmt.Errorf("find the hookline binary for the serve processes: %w", err)
	}
	rc, err := startBenchReceiver(nil)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	url := rc.URL + "/hook"
	cl, _, set, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var children []*serveChild
	defer func() {
		for _, c := range children {
			c.stop()
		}
	}()
	start := func() (*serveChild, error) {
		c, err := startServeChild(ctx, exe, cfg, o, len(children))
		if err != nil {
			return nil, err
		}
		children = append(children, c)
		return c, c.waitReady(ctx, 2*time.Minute)
	}
	fmt.Fprintf(o.progress, "bench scale: serve processes on %s, topics %s*, %d events per phase\n", brokerName(cfg), cfg.TopicPrefix, o.events)
	first, err := start()
	if err != nil {
		return nil, err
	}
	secret, _ := endpoints.GenerateSecret()
	ep, _ := json.Marshal(map[string]any{"id": "bench", "url": url, "secret": secret})
	api := &apiClient{base: "http://" + first.listen}
	if err := api.post(ctx, "/v1/endpoints", ep, http.StatusCreated, nil); err != nil {
		return nil, fmt.Errorf("create the bench endpoint: %w", err)
	}
	res := ScaleResult{Scenario: o.scenario, Events: o.events, Keys: o.keys, Partitions: cfg.Partitions, Concurrency: cfg.Concurrency,
		Broker: brokerName(cfg), Processes: o.children, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// phase produces the events and waits for their deliveries; it returns
	// the seconds it took and each child's deliveries in that time.
	phase := func(prefix string) (float64, []float64, error) {
		recs, err := benchRecords(set.Events, prefix, o.events, o.keys, func(int) string { return "bench" })
		if err != nil {
			return 0, nil, err
		}
		before := make([]float64, len(children))
		for i, c := range children {
			if before[i], err = c.delivered(ctx); err != nil {
				return 0, nil, err
			}
		}
		target := rc.Delivered.Load() + int64(o.events)
		t := time.Now()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return 0, nil, fmt.Errorf("produce bench events: %w", err)
		}
		if err := waitUntil(ctx, firstExit(children), func() bool { return rc.Delivered.Load() >= target }); err != nil {
			return 0, nil, err
		}
		secs := time.Since(t).Seconds()
		each := make([]float64, len(children))
		for i, c := range children {
			after, err := c.delivered(ctx)
			if err != nil {
				return 0, nil, err
			}
			each[i] = after - before[i]
		}
		return secs, each, nil
	}
	secs, _, err := phase("one")
	if err != nil {
		return nil, err
	}
	res.OnePerSecond = float64(o.events) / secs
	for len(children) < o.children {
		if _, err := start(); err != nil {
			return nil, err
		}
	}
	// The first process is ready again once the group has settled.
	for _, c := range children {
		if err := c.waitReady(ctx, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	secs, each, err := phase("many")
	if err != nil {
		return nil, err
	}
	res.TogetherPerSecond = float64(o.events) / secs
	for _, n := range each {
		res.EachPerSecond = append(res.EachPerSecond, n/secs)
	}
	res.Speedup = res.TogetherPerSecond / res.OnePerSecond
	for _, c := range children {
		res.EachPeakRSSBytes = append(res.EachPeakRSSBytes, statusKB(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid), "VmHWM:"))
		c.stop()
	}
	children = nil

	conc := min(cfg.Concurrency*cfg.Partitions, o.keys)
	if res.ReceiverRawPerSecond, err = rawPostRate(url, secret, benchWebhookBody(benchPayload), o.events, conc); err != nil {
		return nil, err
	}
	res.ReceiverHeadroom = res.ReceiverRawPerSecond / res.TogetherPerSecond
	if res.ReceiverHeadroom < 1.5 {
		fmt.Fprintf(o.progress, "bench scale: warning: the receiver's raw capacity is only %.1f x what the processes reached: it may be what bounds them\n", res.ReceiverHeadroom)
	}
	return res, nil
}

// serveChild is one `hookline serve` process of the scale scenario.
type serveChild struct {
	cmd             *exec.Cmd
	listen, metrics string
	n               int
	// done is closed once the process has ended, with err saying how.
	done chan struct{}
	err  error
}

// startServeChild starts `hookline serve` on cfg's brokers and topics with
// the bench's pipeline settings, on free loopback ports and a data dir of
// its own.
func startServeChild(ctx context.Context, exe string, cfg config.Config, o benchOptions, n int) (*serveChild, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	c := &serveChild{listen: ports[0], metrics: ports[1], n: n + 1, done: make(chan struct{})}
	dir := filepath.Join(cfg.DataDir, "serve-"+strconv.Itoa(n))
	args := append([]string{"serve", "--brokers", strings.Join(cfg.Brokers, ","), "--topic-prefix", cfg.TopicPrefix,
		"--partitions", strconv.Itoa(cfg.Partitions), "--concurrency", strconv.Itoa(cfg.Concurrency),
		"--listen", c.listen, "--metrics-listen", c.metrics, "--data-dir", dir,
		"--allow-private-destinations", "--log-level", cfg.LogLevel}, o.childArgs...)
	c.cmd = exec.CommandContext(ctx, exe, args...)
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(syscall.SIGTERM) }
	c.cmd.WaitDelay = 30 * time.Second
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	go func() {
		c.err = fmt.Errorf("serve process %d exited: %v", c.n, c.cmd.Wait())
		close(c.done)
	}()
	return c, nil
}

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out = append(out, ln.Addr().String())
		_ = ln.Close()
	}
	return out, nil
}

// firstExit yields the error of whichever child ends first.
func firstExit(children []*serveChild) <-chan error {
	out := make(chan error, len(children))
	for _, c := range children {
		go func() {
			<-c.done
			out <- c.err
		}()
	}
	return out
}

// waitReady polls the child's /readyz until every stage has partitions.
func (c *serveChild) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metrics+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.err
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve process on %s not ready within %v", c.listen, limit)
		}
	}
}

// delivered is the child's hookline_deliveries_total with outcome
// delivered, summed over its other labels.
func (c *serveChild) delivered(ctx context.Context) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the serve process's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "hookline_deliveries_total{") || !strings.Contains(line, `outcome="delivered"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// stop sends SIGTERM and waits for the process to end.
func (c *serveChild) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
