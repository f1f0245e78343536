package test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

// kafkaSh runs deploy/kafka/kafka.sh on the three-node cluster.
func kafkaSh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("../deploy/kafka/kafka.sh", append(args, "--nodes", "3")...).CombinedOutput()
	if err != nil {
		t.Fatalf("kafka.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("kafka.sh %v: %s", args, strings.TrimSpace(string(out)))
}

// One broker of three is SIGKILLed in the middle of a run (the leader of
// the most events partitions) and started again 10s later; the same serve
// process carries on throughout, loses nothing and duplicates nothing in
// the chain.
func TestBrokerFailoverKeepsFlowing(t *testing.T) {
	brokers := testenv.Cluster(t)
	const partitions = 4
	total := failureSize(6000, 10000)
	prefix := chaosPrefix(t)
	set := chaosTopics(prefix, partitions)
	// The production default grace (15s), which also bounds a transaction:
	// partitions led by the killed broker take the controller's broker
	// session timeout to move, and the test's usual 5s is shorter.
	n := newNode(t, "failover-0", brokers, prefix, partitions, "--replication-factor", "3", "--shutdown-grace", "15s")
	n.start()

	fl := newFleet(t)
	for i := range 10 {
		if i < 3 {
			fl.add(fmt.Sprintf("flaky-%d", i), flaky(0.5))
		} else {
			fl.add(fmt.Sprintf("healthy-%d", i), nil)
		}
	}
	fl.register(n, time.Second)
	prod := newProducer(t, brokers, set.Events)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	began := time.Now()
	sending := prod.stream(ctx, total, 250, 20*time.Second, fl.ids, 500)

	time.Sleep(5 * time.Second)
	victim := busiestLeader(t, brokers, set.Events)
	killedAt := time.Since(began)
	kafkaSh(t, "kill", strconv.Itoa(int(victim)))
	time.Sleep(10 * time.Second)
	kafkaSh(t, "start-node", strconv.Itoa(int(victim)))
	backAt := time.Since(began)

	if err := <-sending; err != nil {
		t.Fatal(err)
	}
	f, _ := settle(t, brokers, set, prod.events(), fl.delivered, 5*time.Minute)
	select {
	case <-n.exited:
		t.Error("serve exited during the broker failover")
	default:
	}
	t.Logf("broker failover: node %d killed at %v, back at %v, run settled at %v; serve started %d time(s)",
		victim, killedAt.Round(100*time.Millisecond), backAt.Round(100*time.Millisecond), time.Since(began).Round(time.Second), n.starts)
	testreport.Figures(t, "broker failover, node %d killed for %v: %v", victim, (backAt - killedAt).Round(100*time.Millisecond), f)
	checkFigures(t, f)
	n.stop()
}

// busiestLeader is the broker leading the most partitions of topic.
func busiestLeader(t *testing.T, brokers []string, topic string) int32 {
	t.Helper()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	md, err := adm.Metadata(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[int32]int)
	best := int32(-1)
	for _, p := range md.Topics[topic].Partitions {
		count[p.Leader]++
		if best < 0 || count[p.Leader] > count[best] {
			best = p.Leader
		}
	}
	if best < 0 {
		t.Fatalf("no leader known for %s", topic)
	}
	return best
}
