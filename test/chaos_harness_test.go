package test

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/topics"
)

// This file holds what the failure tests share: `hookline serve` processes
// that can be SIGKILLed and restarted, a fleet of receivers that keeps its
// own count of 2xx answers, a producer writing events straight to Kafka, and
// an audit of the topic chain read with read_committed.

// The failure tests run in `make test` (so in CI) at the size given as ci,
// and at the size given as long with HOOKLINE_CHAOS=long (`make chaos`).
// The tests that kill serve processes beside an outside broker run in make
// test's real-Kafka pass; on the embedded pass (no HOOKLINE_TEST_BROKERS)
// they run only with HOOKLINE_CHAOS set, against an in-process broker.

// failureSize is n at CI size, or long with HOOKLINE_CHAOS=long.
func failureSize(ci, long int) int {
	if os.Getenv("HOOKLINE_CHAOS") == "long" {
		return long
	}
	return ci
}

// requireOutsideKafka skips a failure test on make test's embedded pass:
// it runs on the real-Kafka pass, or anywhere with HOOKLINE_CHAOS set.
func requireOutsideKafka(t *testing.T) {
	t.Helper()
	if os.Getenv("HOOKLINE_TEST_BROKERS") == "" && os.Getenv("HOOKLINE_CHAOS") == "" {
		t.Skip("failure test: runs on a real Kafka (HOOKLINE_TEST_BROKERS, make test's second pass) or with HOOKLINE_CHAOS=1")
	}
}

// outsideBrokers returns a broker that outlives the serve processes of a
// test: the real Kafka of HOOKLINE_TEST_BROKERS, or else an embedded broker
// in the test process (so a SIGKILLed serve takes no broker down with it).
func outsideBrokers(t *testing.T, partitions int) []string {
	t.Helper()
	if b := testBrokers(t); b != nil {
		return b
	}
	emb, err := app.StartEmbedded("127.0.0.1:0", t.TempDir(), int32(partitions), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	return emb.Addrs()
}

// chaosTopics names the topics of a pipeline with the given prefix and the
// settings newNode passes.
func chaosTopics(prefix string, partitions int) topics.Set {
	d := config.Default()
	return topics.New(prefix, d.Tiers, testScale, int32(partitions), -1)
}

func chaosPrefix(t *testing.T) string {
	return fmt.Sprintf("c%d.%s.", rand.IntN(1e6), strings.ToLower(nonTopicChars.ReplaceAllString(t.Name(), "-")))
}

// node is one `hookline serve` process slot: its instance id, ports and log
// file survive restarts, so a restart fences the previous incarnation's
// transactional producers at once (the production advice for crash restarts).
type node struct {
	t       *testing.T
	name    string
	args    []string
	api     string
	metrics string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// newNode prepares a serve process for brokers and topic prefix. Extra
// flags come last and override the defaults.
func newNode(t *testing.T, name string, brokers []string, prefix string, partitions int, extra ...string) *node {
	t.Helper()
	// HOOKLINE_TEST_LOG_DIR keeps the processes' logs after the test;
	// HOOKLINE_TEST_LOG_LEVEL sets their level.
	logDir := os.Getenv("HOOKLINE_TEST_LOG_DIR")
	if logDir == "" {
		logDir = t.TempDir()
	}
	n := &node{t: t, name: name, api: testenv.FreeAddr(t), metrics: testenv.FreeAddr(t), logPath: filepath.Join(logDir, name+".log")}
	n.args = append([]string{"serve",
		"--brokers", strings.Join(brokers, ","),
		"--topic-prefix", prefix,
		"--instance-id", name,
		"--listen", n.api, "--metrics-listen", n.metrics,
		"--partitions", strconv.Itoa(partitions),
		"--tier-scale", strconv.FormatFloat(testScale, 'f', -1, 64),
		"--breaker-cooldown", "200ms",
		"--shutdown-grace", "5s",
		"--log-level", cmp.Or(os.Getenv("HOOKLINE_TEST_LOG_LEVEL"), "warn"),
		// The receivers listen on 127.0.0.1, which the SSRF guard refuses
		// by default.
		"--allow-private-destinations",
	}, extra...)
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.dumpLog(40)
		}
	})
	return n
}

// start launches the process and waits until every stage is assigned.
func (n *node) start() time.Duration {
	n.t.Helper()
	began := time.Now()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	fmt.Fprintf(logf, "--- start %d at %s\n", n.starts+1, began.Format(time.RFC3339Nano))
	cmd := exec.Command(hooklineBinary(n.t), n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		n.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.starts++
	n.mu.Unlock()

	// A restart after a SIGKILL waits for the group to drop the dead
	// member (the session timeout) before it is assigned.
	deadline := time.Now().Add(3 * time.Minute)
	for !n.ready() {
		select {
		case <-exited:
			n.dumpLog(40)
			n.t.Fatalf("%s exited before it was ready", n.name)
		default:
		}
		if time.Now().After(deadline) {
			n.dumpLog(40)
			n.t.Fatalf("%s not ready within 3 minutes", n.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(began)
}

func (n *node) ready() bool {
	resp, err := http.Get("http://" + n.metrics + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill SIGKILLs the process, if it runs, and reaps it.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop sends SIGTERM and waits for a clean exit within the grace period.
func (n *node) stop() {
	n.t.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if !cmd.ProcessState.Success() {
			n.dumpLog(20)
			n.t.Errorf("%s after SIGTERM: %v", n.name, cmd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		n.t.Errorf("%s did not stop within 30s of SIGTERM", n.name)
	}
}

func (n *node) dumpLog(lines int) {
	data, _ := os.ReadFile(n.logPath)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	n.t.Logf("last lines of %s's log:\n%s", n.name, strings.Join(all, "\n"))
}

// fleet is a set of receivers, each registered as the endpoint of its name.
// It keeps its own count of 2xx answers per webhook-id: an event counts as
// delivered once an endpoint answered it 2xx.
type fleet struct {
	t   *testing.T
	rcs map[string]*receiver
	ids []string

	mu sync.Mutex
	ok map[string]int // 2xx answers per webhook-id, all endpoints
}

func newFleet(t *testing.T) *fleet {
	return &fleet{t: t, rcs: make(map[string]*receiver), ok: make(map[string]int)}
}

// add creates a receiver answering as respond says (nil: always 200).
func (f *fleet) add(id string, respond func(id string, attempt int) int) {
	f.rcs[id] = newReceiver(f.t, func(whID string, attempt int) int {
		status := http.StatusOK
		if respond != nil {
			status = respond(whID, attempt)
		}
		if status >= 200 && status < 300 {
			f.mu.Lock()
			f.ok[whID]++
			f.mu.Unlock()
		}
		return status
	})
	f.ids = append(f.ids, id)
}

// flaky answers 503 to a share of requests, at random.
func flaky(share float64) func(string, int) int {
	return func(string, int) int {
		if rand.Float64() < share {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
}

// register creates every endpoint through a serve process's API.
func (f *fleet) register(n *node, timeout time.Duration) {
	f.t.Helper()
	f.registerAt("http://"+n.api, timeout)
}

// registerAt creates every endpoint through the API at base ("http://host:port").
func (f *fleet) registerAt(base string, timeout time.Duration) {
	f.t.Helper()
	for _, id := range f.ids {
		rc := f.rcs[id]
		status, body, err := postJSON(base+"/v1/endpoints", map[string]any{
			"id": id, "url": rc.url, "secret": rc.secret, "timeout_ms": int(timeout / time.Millisecond),
		})
		if err != nil || status != http.StatusCreated {
			f.t.Fatalf("create endpoint %s: %d %s %v", id, status, body, err)
		}
	}
}

func (f *fleet) delivered(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ok[id]
}

// producer writes events straight to the events topic, as a high-volume
// producer does, and remembers which endpoint each one is for.
type producer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	// pad is put into every payload, to make records (and so the
	// transactions that hand them on) bigger.
	pad string

	mu   sync.Mutex
	sent map[string]string // event id -> endpoint id
}

func newProducer(t *testing.T, brokers []string, topic string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl, topic: topic, sent: make(map[string]string)}
}

// send produces events first..first+count-1, spread over endpoints, keyed
// by one of keys ordering keys; it returns once Kafka acknowledged them.
func (p *producer) send(ctx context.Context, first, count int, endpoints []string, keys int) error {
	rs := make([]*kgo.Record, 0, count)
	ids := make(map[string]string, count)
	for i := first; i < first+count; i++ {
		id := fmt.Sprintf("evt-%06d", i)
		ep := endpoints[i%len(endpoints)]
		r, err := envelope.Record(p.topic, envelope.Event{
			ID: id, Type: "chaos.event", EndpointID: ep, OrderingKey: fmt.Sprint("key-", i%keys),
			Payload: []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, p.pad)),
		})
		if err != nil {
			return err
		}
		rs = append(rs, r)
		ids[id] = ep
	}
	if err := p.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("produce events %d..%d: %w", first, first+count-1, err)
	}
	p.mu.Lock()
	for id, ep := range ids {
		p.sent[id] = ep
	}
	p.mu.Unlock()
	return nil
}

// stream sends total events in batches at an even pace over the given
// time, in the background; the returned channel reports the first error.
func (p *producer) stream(ctx context.Context, total, batch int, over time.Duration, endpoints []string, keys int) <-chan error {
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		batches := (total + batch - 1) / batch
		tick := over / time.Duration(batches)
		for b := range batches {
			count := min(batch, total-b*batch)
			if err := p.send(ctx, b*batch, count, endpoints, keys); err != nil {
				errc <- err
				return
			}
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case <-time.After(tick):
			}
		}
	}()
	return errc
}

func (p *producer) events() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.sent))
	for k, v := range p.sent {
		out[k] = v
	}
	return out
}

// topicRecords are one topic's records read to its last stable offset.
type topicRecords struct {
	records []*kgo.Record
	// aborts counts abort markers: transactions that wrote here and never
	// committed (a crashed or fenced producer's).
	aborts int
}

// readAll reads every record of the topics up to their last stable offsets,
// with the given isolation level, keeping count of abort markers.
func readAll(t *testing.T, brokers []string, committed bool, names ...string) map[string]*topicRecords {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// The last stable offset: a pending transaction is waited out, so the
	// read ends on a decided record.
	var ends kadm.ListedOffsets
	for {
		ends, err = adm.ListCommittedOffsets(ctx, names...)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("list end offsets of %v: %v", names, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	if !committed {
		// The high watermark: every record, committed or aborted.
		if ends, err = adm.ListEndOffsets(ctx, names...); err == nil {
			err = ends.Error()
		}
		if err != nil {
			t.Fatalf("list end offsets of %v: %v", names, err)
		}
	}
	type tp struct {
		topic string
		p     int32
	}
	want := make(map[tp]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[tp{o.Topic, o.Partition}] = o.Offset
		}
	})
	out := make(map[string]*topicRecords, len(names))
	for _, n := range names {
		out[n] = &topicRecords{}
	}
	if len(want) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(names...),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v: %d partitions not read to their end within 2 minutes", names, len(want))
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("read %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			if r.Offset+1 >= want[k] {
				delete(want, k)
			}
			if r.Attrs.IsControl() {
				// Control record key: version int16, type int16 (0 abort, 1 commit).
				if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:]) == 0 {
					out[r.Topic].aborts++
				}
				return
			}
			out[r.Topic].records = append(out[r.Topic].records, r)
		})
	}
	return out
}

func eventID(r *kgo.Record) string {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.Value, &ev)
	return ev.ID
}

// chain is what the topic chain holds for a run, read with read_committed.
type chain struct {
	dlq         map[string]int // event id -> DLQ records
	dlqReasons  map[string]int // "class: reason" -> DLQ records
	tier        map[string]int // "event/attempts" -> tier records, all tiers
	attempts    map[string]int // attempt id -> attempt records
	tierAborts  int            // abort markers in the tier topics
	attemptRecs []processors.Attempt
	tierRecs    []*kgo.Record
	dlqRecs     []*kgo.Record
}

// logDuplicates logs every copy of each tier or DLQ record that is in the
// chain more than once: where it is, which producer wrote it, and the
// record it was handed on from, so that a failure says how it came about.
func logDuplicates(t *testing.T, brokers []string, c chain) {
	t.Helper()
	sources := make(map[string]bool)
	copies := make(map[string][]*kgo.Record)
	for _, r := range c.tierRecs {
		st, _ := processors.ParseRetryState(r.Headers)
		k := fmt.Sprintf("tier %s/%d", eventID(r), st.Attempts)
		copies[k] = append(copies[k], r)
	}
	for _, r := range c.dlqRecs {
		k := "dlq " + eventID(r)
		copies[k] = append(copies[k], r)
	}
	for k, rs := range copies {
		if len(rs) < 2 {
			continue
		}
		for _, r := range rs {
			src := ""
			for _, h := range r.Headers {
				if h.Key == pipeline.HeaderSource {
					src = string(h.Value)
				}
			}
			t.Logf("duplicate %s: %s[%d]@%d producer %d epoch %d from %s at %s", k, r.Topic, r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, src, r.Timestamp.Format(time.RFC3339Nano))
			sources[src] = true
		}
	}
	for src := range sources {
		logAround(t, brokers, src)
	}
}

// logAround logs the records around a source "topic/partition/offset" as a
// read_uncommitted reader sees them, transaction markers included: which of
// them a transaction wrote, by which producer, and how it ended.
func logAround(t *testing.T, brokers []string, src string) {
	t.Helper()
	i := strings.LastIndexByte(src, '/')
	j := strings.LastIndexByte(src[:max(i, 0)], '/')
	if i < 0 || j < 0 {
		return
	}
	topic := src[:j]
	p, err1 := strconv.Atoi(src[j+1 : i])
	o, err2 := strconv.ParseInt(src[i+1:], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	from := max(o-4, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {int32(p): kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for seen := int64(0); seen < 10 && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if seen >= 10 {
				return
			}
			seen++
			t.Logf("  around %s: @%d producer %d epoch %d control %v transactional %v event %s", src, r.Offset, r.ProducerID, r.ProducerEpoch,
				r.Attrs.IsControl(), r.Attrs.IsTransactional(), eventID(r))
		})
	}
}

// readChain reads the tier topics, the DLQ and the attempts topic.
func readChain(t *testing.T, brokers []string, set topics.Set, committed bool) chain {
	t.Helper()
	names := []string{set.DLQ, set.Attempts}
	for _, tier := range set.Tiers {
		names = append(names, tier.Topic)
	}
	all := readAll(t, brokers, committed, names...)
	c := chain{dlq: make(map[string]int), dlqReasons: make(map[string]int), tier: make(map[string]int), attempts: make(map[string]int)}
	for _, r := range all[set.DLQ].records {
		c.dlq[eventID(r)]++
		c.dlqRecs = append(c.dlqRecs, r)
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			t.Fatalf("DLQ record: %v", err)
		}
		c.dlqReasons[fmt.Sprintf("%s: %s", st.LastClass, st.DLQReason)]++
	}
	for _, tier := range set.Tiers {
		c.tierAborts += all[tier.Topic].aborts
		for _, r := range all[tier.Topic].records {
			st, err := processors.ParseRetryState(r.Headers)
			if err != nil {
				t.Fatalf("%s record: %v", tier.Name, err)
			}
			c.tier[fmt.Sprintf("%s/%d", eventID(r), st.Attempts)]++
			c.tierRecs = append(c.tierRecs, r)
		}
	}
	for _, r := range all[set.Attempts].records {
		a, err := processors.DecodeAttempt(r.Value)
		if err != nil {
			t.Fatalf("attempt record: %v", err)
		}
		c.attempts[a.AttemptID]++
		c.attemptRecs = append(c.attemptRecs, a)
	}
	return c
}

// dups counts the records beyond the first of each key.
func dups(m map[string]int) int {
	d := 0
	for _, c := range m {
		if c > 1 {
			d += c - 1
		}
	}
	return d
}

// figures are what a failure test reports.
type figures struct {
	sent, delivered, inDLQ, both, lost, dupDeliveries int
	// The chain, read with read_committed: records beyond the first.
	dupTier, dupDLQ, dupAttempts int
}

func (f figures) String() string {
	return fmt.Sprintf("sent %d, delivered %d, in the DLQ %d (of which also delivered %d), lost %d, duplicate deliveries %d; "+
		"read_committed duplicates: tier records %d, DLQ records %d, attempt records %d",
		f.sent, f.delivered, f.inDLQ, f.both, f.lost, f.dupDeliveries, f.dupTier, f.dupDLQ, f.dupAttempts)
}

// settle waits until every sent event is delivered (delivered returns the
// 2xx answers an event got) or dead-lettered, or the deadline passes, then
// reads the chain and counts.
func settle(t *testing.T, brokers []string, set topics.Set, sent map[string]string, delivered func(id string) int, within time.Duration) (figures, chain) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		dlq := make(map[string]bool)
		for _, r := range readAll(t, brokers, true, set.DLQ)[set.DLQ].records {
			dlq[eventID(r)] = true
		}
		lost := 0
		for id := range sent {
			if delivered(id) == 0 && !dlq[id] {
				lost++
			}
		}
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	// Leave a moment for a last in-flight repeat to show before counting.
	time.Sleep(2 * time.Second)
	c := readChain(t, brokers, set, true)
	f := figures{sent: len(sent), dupTier: dups(c.tier), dupDLQ: dups(c.dlq), dupAttempts: dups(c.attempts)}
	t.Logf("DLQ records by reason: %v", c.dlqReasons)
	for id := range sent {
		ok := delivered(id)
		switch {
		case ok > 0 && c.dlq[id] > 0:
			f.both++
			f.delivered++
		case ok > 0:
			f.delivered++
		case c.dlq[id] == 0:
			f.lost++
		}
		if ok > 1 {
			f.dupDeliveries += ok - 1
		}
	}
	for id := range c.dlq {
		if _, ok := sent[id]; ok {
			f.inDLQ++
		}
	}
	return f, c
}

// checkFigures fails the test on loss or on a duplicate in the chain.
func checkFigures(t *testing.T, f figures) {
	t.Helper()
	if f.lost > 0 {
		t.Errorf("%d events neither delivered nor in the DLQ", f.lost)
	}
	if f.dupTier+f.dupDLQ+f.dupAttempts > 0 {
		t.Errorf("the chain holds duplicates under read_committed: tier %d, DLQ %d, attempts %d", f.dupTier, f.dupDLQ, f.dupAttempts)
	}
}

// checkNeverEarly checks every tier attempt against the due time of the
// tier record it was made for (attempt ids start with the record's
// coordinates) and returns how many it checked.
func checkNeverEarly(t *testing.T, c chain) int {
	t.Helper()
	due := make(map[string]time.Time, len(c.tierRecs))
	for _, r := range c.tierRecs {
		st, err := processors.ParseRetryState(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		due[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = st.Due
	}
	checked, early := 0, 0
	for _, a := range c.attemptRecs {
		if a.Tier == processors.StageEvents {
			continue
		}
		src := strings.TrimSuffix(a.AttemptID, "/"+a.EndpointID)
		d, ok := due[src]
		if !ok {
			t.Errorf("attempt %s: no committed tier record at %s", a.AttemptID, src)
			continue
		}
		checked++
		if a.StartedAt.Before(d.Truncate(time.Millisecond)) {
			early++
			if early <= 5 {
				t.Errorf("attempt %d of %s in %s started %v, %v before its due time", a.Attempt, a.EventID, a.Tier, a.StartedAt, d.Sub(a.StartedAt))
			}
		}
	}
	if early > 5 {
		t.Errorf("%d tier attempts started before their due time", early)
	}
	return checked
}

func postJSON(url string, v any) (int, []byte, error) {
	body, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var buf [4096]byte
	n, _ := resp.Body.Read(buf[:])
	return resp.StatusCode, buf[:n], nil
}
