package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TableReplays holds the DLQ replay audit trail: one row per replay run
// state written by `hookline dlq replay`; the row with the latest `at` of a
// replay id is its current state (use FINAL or argMax).
const TableReplays = "dlq_replays"

func migrateReplays(f Flavor, db string, _ Retention) []string {
	t, lc := f.timeType(), f.lc()
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
	replay_id String,
	operator String,
	started_at %[3]s,
	at %[3]s,
	target %[4]s,
	topic String,
	filters String,
	matched UInt64,
	sent UInt64,
	skipped UInt64,
	runs UInt32,
	outcome %[4]s,
	error String
) ENGINE = ReplacingMergeTree(at)
ORDER BY replay_id`, db, TableReplays, t, lc)}
}

// ReplayRow is one state of a DLQ replay, as the audit topic records it.
type ReplayRow struct {
	ReplayID, Operator     string
	StartedAt, At          time.Time
	Target, Topic, Filters string
	Matched, Sent, Skipped uint64
	Runs                   uint32
	Outcome, Error         string
}

// RecordReplay writes a replay's state to the audit table.
func RecordReplay(ctx context.Context, conn driver.Conn, database string, r ReplayRow) error {
	cols := []string{"replay_id", "operator", "started_at", "at", "target", "topic", "filters", "matched", "sent", "skipped", "runs", "outcome", "error"}
	b, err := conn.PrepareBatch(ctx, insertStatement(database, TableReplays, cols))
	if err != nil {
		return fmt.Errorf("record replay %s in clickhouse: %w", r.ReplayID, err)
	}
	if err := b.Append(r.ReplayID, r.Operator, r.StartedAt, r.At, r.Target, r.Topic, r.Filters, r.Matched, r.Sent, r.Skipped, r.Runs, r.Outcome, r.Error); err != nil {
		return fmt.Errorf("record replay %s in clickhouse: %w", r.ReplayID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record replay %s in clickhouse: %w", r.ReplayID, err)
	}
	return nil
}
