package topics

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var defaultDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}

func TestTierName(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "retry.30s"},
		{2 * time.Minute, "retry.2m"},
		{10 * time.Minute, "retry.10m"},
		{time.Hour, "retry.1h"},
		{90 * time.Second, "retry.1m30s"},
		{90 * time.Minute, "retry.1h30m"},
		{time.Hour + 30*time.Second, "retry.1h0m30s"},
		{24 * time.Hour, "retry.24h"},
		{500 * time.Millisecond, "retry.500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := TierName(tt.d); got != tt.want {
				t.Errorf("TierName(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	s := New("hookline.", defaultDelays, 0.01, 8, -1)
	wantAll := []string{
		"hookline.events",
		"hookline.retry.30s", "hookline.retry.2m", "hookline.retry.10m", "hookline.retry.1h",
		"hookline.dlq", "hookline.attempts", "hookline.endpoints", "hookline.audit",
		"hookline.park", "hookline.holds",
	}
	if got := s.All(); !reflect.DeepEqual(got, wantAll) {
		t.Errorf("All() = %q, want %q", got, wantAll)
	}
	// Scaling changes the wait, never the topic.
	if tr := s.Tiers[3]; tr.Name != "retry.1h" || tr.Topic != "hookline.retry.1h" || tr.Delay != 36*time.Second {
		t.Errorf("Tiers[3] = %+v, want retry.1h scaled to 36s", tr)
	}
	for topic, want := range map[string]int{
		"hookline.retry.30s": 0,
		"hookline.retry.1h":  3,
		"hookline.events":    -1,
		"hookline.dlq":       -1,
		"retry.30s":          -1,
	} {
		if got := s.TierIndex(topic); got != want {
			t.Errorf("TierIndex(%q) = %d, want %d", topic, got, want)
		}
	}
	if got := New("x.", nil, 1, 1, 1).All(); !reflect.DeepEqual(got, []string{"x.events", "x.dlq", "x.attempts", "x.endpoints", "x.audit", "x.park", "x.holds"}) {
		t.Errorf("All() without tiers = %q", got)
	}
}

func newCluster(t *testing.T) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, newAdmin(t, c)
}

func newAdmin(t *testing.T, c *kfake.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func partitionCounts(t *testing.T, adm *kadm.Client, topics ...string) map[string]int {
	t.Helper()
	// Fresh metadata: kgo caches "unknown topic" for MetadataMinAge.
	ds, err := adm.ListTopics(kadm.WithAuthorizedOps(testContext(t)), topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int)
	for _, d := range ds {
		if d.Err == nil {
			out[d.Topic] = len(d.Partitions)
		}
	}
	return out
}

func TestProvision(t *testing.T) {
	_, adm := newCluster(t)
	ctx := testContext(t)
	s := New("hookline.", defaultDelays, 1, 8, -1)

	if err := s.Provision(ctx, adm); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	want := map[string]int{}
	for _, topic := range s.All() {
		want[topic] = 8
	}
	want[s.Endpoints] = 1
	want[s.Audit] = 1
	if got := partitionCounts(t, adm, s.All()...); !reflect.DeepEqual(got, want) {
		t.Errorf("partition counts = %v, want %v", got, want)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, s.All()...)
	if err != nil {
		t.Fatal(err)
	}
	wantConfigs := map[string]map[string]string{
		s.Events:         {"retention.ms": "604800000"},
		s.Tiers[0].Topic: {"retention.ms": "604830000"},
		s.Tiers[3].Topic: {"retention.ms": "608400000"},
		s.DLQ:            {"retention.ms": "-1", "retention.bytes": "-1"},
		s.Attempts:       {"retention.ms": "604800000"},
		s.Endpoints:      {"cleanup.policy": "compact"},
		s.Audit:          {"retention.ms": "-1", "retention.bytes": "-1"},
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Errorf("describe configs of %s: %v", rc.Name, rc.Err)
			continue
		}
		for key, wantV := range wantConfigs[rc.Name] {
			var got string
			for _, cfg := range rc.Configs {
				if cfg.Key == key && cfg.Value != nil {
					got = *cfg.Value
				}
			}
			if got != wantV {
				t.Errorf("%s %s = %q, want %q", rc.Name, key, got, wantV)
			}
		}
	}

	// A second run, as by every later start, changes nothing.
	if err := s.Provision(ctx, adm); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if got := partitionCounts(t, adm, s.All()...); !reflect.DeepEqual(got, want) {
		t.Errorf("after second Provision: partition counts = %v, want %v", got, want)
	}
}

func TestProvisionPartitionMismatch(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		parts    int32
		want     string
	}{
		{"tier", "hookline.retry.2m", 4, "topic hookline.retry.2m has 4 partitions, want 8: retry tiers and the DLQ must match the events topic"},
		{"dlq", "hookline.dlq", 16, "topic hookline.dlq has 16 partitions, want 8"},
		{"attempts", "hookline.attempts", 2, "topic hookline.attempts has 2 partitions, want 8"},
		{"events", "hookline.events", 3, "topic hookline.events has 3 partitions, want 8"},
		{"endpoints", "hookline.endpoints", 3, "topic hookline.endpoints has 3 partitions, want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, adm := newCluster(t)
			if err := c.CreateTopic(tt.existing, tt.parts, nil); err != nil {
				t.Fatal(err)
			}
			s := New("hookline.", defaultDelays, 1, 8, -1)
			err := s.Provision(testContext(t), adm)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrPartitionMismatch) {
				t.Fatalf("Provision() = %v, want ErrPartitionMismatch containing %q", err, tt.want)
			}
			// Nothing is created next to a topology that is wrong.
			if got := partitionCounts(t, adm, s.All()...); len(got) != 1 {
				t.Errorf("topics after a failed Provision: %v, want only %s", got, tt.existing)
			}
		})
	}
}

// Another process creates a topic between our list and our create: we get
// TopicAlreadyExists and must still check what that process created.
func TestProvisionConcurrentCreate(t *testing.T) {
	tests := []struct {
		name    string
		parts   int32
		wantErr string
	}{
		{"same partitions", 8, ""},
		{"other partitions", 4, "topic hookline.dlq has 4 partitions, want 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, adm := newCluster(t)
			s := New("hookline.", defaultDelays, 1, 8, -1)
			c.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				req := kreq.(*kmsg.CreateTopicsRequest)
				if len(req.Topics) != 1 || req.Topics[0].Topic != s.DLQ {
					return nil, nil, false
				}
				c.DropControl()
				done := make(chan error, 1)
				go func() { done <- c.CreateTopic(s.DLQ, tt.parts, nil) }()
				var err error
				c.SleepControl(func() { err = <-done })
				if err != nil {
					t.Errorf("racing create: %v", err)
				}
				return nil, nil, false // our request now meets an existing topic
			})
			err := s.Provision(testContext(t), adm)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Provision: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Provision() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// Several processes starting at once all succeed and agree.
func TestProvisionParallel(t *testing.T) {
	c, _ := newCluster(t)
	s := New("hookline.", defaultDelays, 1, 8, -1)
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		adm := newAdmin(t, c)
		wg.Go(func() { errs[i] = s.Provision(ctx, adm) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	if got := partitionCounts(t, newAdmin(t, c), s.All()...); len(got) != len(s.All()) {
		t.Errorf("topics = %v, want all of %q", got, s.All())
	}
}
