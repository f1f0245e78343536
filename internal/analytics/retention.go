package analytics

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DroppedPartition is one monthly partition Prune dropped.
type DroppedPartition struct {
	Table     string
	Partition string // YYYYMM
	Rows      uint64
	// Before is the cutoff: now minus the table's retention. The whole
	// month of the partition ended before it.
	Before time.Time
}

// Prune drops, in every table with a retention, the monthly partitions
// whose month ended before now minus that table's retention (r's zero
// fields: DefaultRetention's). It is retention for servers without TTL
// (18.x), and harmless where a TTL has already removed the rows. A
// partition holding any row younger than the retention is kept whole, so
// rows live up to a month longer than the retention, never shorter.
// Partitions are months in the server's time zone; a zone far from UTC
// moves the boundary by its offset.
func Prune(ctx context.Context, conn driver.Conn, database string, r Retention, now time.Time) ([]DroppedPartition, error) {
	if err := CheckDatabaseName(database); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	r = r.orDefault()
	var dropped []DroppedPartition
	for _, t := range ttlTables {
		cutoff := now.Add(-t.keep(r))
		parts, err := partitions(ctx, conn, database, t.name)
		if err != nil {
			return dropped, fmt.Errorf("prune %s.%s: %w", database, t.name, err)
		}
		for _, p := range parts {
			end, ok := monthEnd(p.Partition)
			if !ok || end.After(cutoff) {
				continue
			}
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", database, t.name, p.Partition)); err != nil {
				return dropped, fmt.Errorf("prune %s.%s: drop partition %s: %w", database, t.name, p.Partition, err)
			}
			p.Before = cutoff
			dropped = append(dropped, p)
		}
	}
	return dropped, nil
}

// partitions lists the active partitions of a table with their rows.
func partitions(ctx context.Context, conn driver.Conn, database, table string) ([]DroppedPartition, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT partition, sum(rows) FROM system.parts
WHERE database = %s AND table = %s AND active
GROUP BY partition ORDER BY partition`, quoteString(database), quoteString(table)))
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []DroppedPartition
	for rows.Next() {
		p := DroppedPartition{Table: table}
		if err := rows.Scan(&p.Partition, &p.Rows); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// monthEnd returns the first instant after the month of a YYYYMM partition.
func monthEnd(partition string) (time.Time, bool) {
	n, err := strconv.Atoi(partition)
	if err != nil || len(partition) != 6 || n%100 < 1 || n%100 > 12 {
		return time.Time{}, false
	}
	return time.Date(n/100, time.Month(n%100)+1, 1, 0, 0, 0, 0, time.UTC), true
}
