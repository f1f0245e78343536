package analytics

import (
	"testing"
	"time"
)

// A replay's states collapse to its latest in the audit table.
func TestReplayAuditKeepsTheLatestStatePerReplay(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx := t.Context()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Second)
	for i, outcome := range []string{"interrupted", "completed"} {
		r := ReplayRow{ReplayID: "rp-1", Operator: "alice", StartedAt: start, At: start.Add(time.Duration(i+1) * time.Second),
			Target: "events", Topic: "hookline.events", Filters: "endpoint=ep-1", Matched: 10, Sent: uint64(5 * (i + 1)), Runs: uint32(i + 1), Outcome: outcome}
		if err := RecordReplay(ctx, conn, db, r); err != nil {
			t.Fatal(err)
		}
	}
	var outcome string
	var sent uint64
	if err := conn.QueryRow(ctx, "SELECT outcome, sent FROM "+db+"."+TableReplays+" FINAL WHERE replay_id = 'rp-1'").Scan(&outcome, &sent); err != nil {
		t.Fatal(err)
	}
	if outcome != "completed" || sent != 10 {
		t.Fatalf("latest state: outcome %q sent %d, want completed 10", outcome, sent)
	}
}
