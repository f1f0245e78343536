package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/internal/processors"
)

// Row is one attempt as it lands in the attempts table: the attempt record
// and where it was read from in Kafka.
type Row struct {
	processors.Attempt
	KafkaTopic     string
	KafkaPartition int32
	KafkaOffset    int64
}

// Rejected is an attempts-topic record that could not be decoded. It is
// kept in attempts_rejected rather than dropped, so nothing disappears
// without a trace.
type Rejected struct {
	KafkaTopic     string
	KafkaPartition int32
	KafkaOffset    int64
	Value          []byte
	Err            string
}

// attemptColumns are named in every insert: ClickHouse 18.16 with
// clickhouse-go v2 rejects a batch insert without a column list.
var attemptColumns = []string{
	"attempt_id", "event_id", "endpoint_id", "tenant", "event_type", "attempt",
	"tier", "outcome", "skipped", "status_code", "error_class", "error",
	"latency_ms", "request_bytes", "response_bytes", "next_tier",
	"started_at", "finished_at", "first_attempt_at",
	"kafka_topic", "kafka_partition", "kafka_offset",
}

var rejectedColumns = []string{"kafka_topic", "kafka_partition", "kafka_offset", "value", "error"}

func insertStatement(db, table string, columns []string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", db, table, strings.Join(columns, ", "))
}

func clampU32(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case n > int(^uint32(0)):
		return ^uint32(0)
	}
	return uint32(n)
}

func clampU16(n int) uint16 {
	switch {
	case n < 0:
		return 0
	case n > int(^uint16(0)):
		return ^uint16(0)
	}
	return uint16(n)
}

// dbTime maps the zero time (an absent timestamp) to the Unix epoch, the
// zero of a ClickHouse DateTime, instead of an out-of-range value.
func dbTime(t time.Time) time.Time {
	if t.Before(epoch) {
		return epoch
	}
	return t
}

var epoch = time.Unix(0, 0).UTC()

// values are the row's column values, in the order of attemptColumns.
func (r Row) values() []any {
	a := r.Attempt
	var skipped uint8
	if a.Skipped {
		skipped = 1
	}
	return []any{
		a.AttemptID, a.EventID, a.EndpointID, a.Tenant, a.EventType, clampU32(a.Attempt),
		a.Tier, string(a.Outcome), skipped, clampU16(a.StatusCode), string(a.ErrorClass), a.Error,
		a.LatencyMS, clampU32(a.RequestBytes), clampU32(a.ResponseBytes), a.NextTier,
		dbTime(a.StartedAt), dbTime(a.FinishedAt), dbTime(a.FirstAttempt),
		r.KafkaTopic, r.KafkaPartition, r.KafkaOffset,
	}
}

// InsertRows writes attempt rows in one batch insert. Writing the same rows
// again is harmless: the table collapses rows with the same attempt id.
func InsertRows(ctx context.Context, conn driver.Conn, database string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, insertStatement(database, TableAttempts, attemptColumns))
	if err != nil {
		return fmt.Errorf("prepare insert of %d attempts: %w", len(rows), err)
	}
	defer func() { _ = b.Close() }()
	for _, r := range rows {
		if err := b.Append(r.values()...); err != nil {
			return fmt.Errorf("append attempt %s: %w", r.AttemptID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(rows), err)
	}
	return nil
}

// InsertRejected writes undecodable records to attempts_rejected.
func InsertRejected(ctx context.Context, conn driver.Conn, database string, rejected []Rejected) error {
	if len(rejected) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, insertStatement(database, TableRejected, rejectedColumns))
	if err != nil {
		return fmt.Errorf("prepare insert of %d rejected records: %w", len(rejected), err)
	}
	defer func() { _ = b.Close() }()
	for _, r := range rejected {
		if err := b.Append(r.KafkaTopic, r.KafkaPartition, r.KafkaOffset, string(r.Value), r.Err); err != nil {
			return fmt.Errorf("append rejected record %s/%d/%d: %w", r.KafkaTopic, r.KafkaPartition, r.KafkaOffset, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rejected records: %w", len(rejected), err)
	}
	return nil
}
