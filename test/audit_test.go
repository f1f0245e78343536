package test

import (
	"testing"
	"time"

	"github.com/hookline/hookline/internal/dlq"
)

// A replay's audit trail records, beside the operator's self-declared
// name, the Kafka user its clients authenticated as.
func TestReplayAuditRecordsTheKafkaUser(t *testing.T) {
	h := dlqHarness(t)
	h.dlqPut("gone", "acme", newReceiver(t, dead))
	h.send("evt-audit", "gone", "k", map[string]int{"n": 1})
	h.dlqEntries(1)

	d, err := dlq.New(dlq.Config{Brokers: h.env.Brokers, Topics: h.env.Topics, KafkaUser: "svc-replayer"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if _, err := d.Replay(t.Context(), dlq.ReplayOptions{ID: "audited", Operator: "alice"}); err != nil {
		t.Fatal(err)
	}
	var got []dlq.ReplaySummary
	waitFor(t, 20*time.Second, "the replay in the audit trail", func() bool {
		got, err = d.Replays(t.Context())
		return err == nil && len(got) == 1
	})
	if a := got[0].Latest; a.Operator != "alice" || a.KafkaUser != "svc-replayer" {
		t.Fatalf("audit record has operator %q, kafka user %q; want alice and svc-replayer", a.Operator, a.KafkaUser)
	}
}
