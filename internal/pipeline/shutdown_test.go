package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// More lanes can be in flight (partitions x Concurrency) than the runner's
// completion buffer holds (4 x Concurrency). When the grace period ends with
// all of them in flight, Run abandons them and returns only once every
// worker has returned: none is left blocked on a completion nobody reads.
func TestRunnerLeavesNoWorkerBehindAfterTheGracePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const partitions = 8
		c := newCluster(t, partitions, "in")
		cl, err := kgo.NewClient(c.opts(kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for p := range int32(partitions) {
			rs = append(rs, &kgo.Record{Topic: "in", Partition: p, Key: fmt.Appendf(nil, "k%d", p), Value: []byte("v")})
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()

		started := make(chan struct{}, partitions)
		hang := StageFunc(func(ctx context.Context, _ *kgo.Record, _ []*kgo.Record) ([]*kgo.Record, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
		r, err := NewRunner(RunnerConfig{
			Name: "test", Topic: "in", Group: "g", TransactionalID: "tx-grace",
			ClientOpts:  c.opts(),
			Stage:       hang,
			Concurrency: 1,
			Grace:       100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		deadline := time.After(20 * time.Second)
		for range partitions {
			select {
			case <-started:
			case <-deadline:
				cancel()
				t.Fatalf("not every partition's record started within 20s (runner: %v)", <-done)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runner: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return within 20s of its grace period")
		}
		if n := workersAlive(); n > 0 {
			t.Fatalf("%d workers still running after Run returned", n)
		}
	})
}

// workersAlive counts the goroutines running Runner.work.
func workersAlive() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("pipeline.(*Runner).work("))
		}
		buf = make([]byte, 2*len(buf))
	}
}
