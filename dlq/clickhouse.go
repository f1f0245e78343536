package dlq

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// AttemptRow is one attempt of a pair as the attempts table holds it.
type AttemptRow struct {
	Attempt    uint32    `json:"attempt"`
	Tier       string    `json:"tier"`
	Outcome    string    `json:"outcome"`
	Skipped    bool      `json:"skipped"`
	StatusCode uint16    `json:"status_code"`
	ErrorClass string    `json:"error_class"`
	Error      string    `json:"error"`
	LatencyMS  float64   `json:"latency_ms"`
	StartedAt  time.Time `json:"started_at"`
}

// AttemptHistory returns every attempt of the pair (event, endpoint) from
// table, the attempts table of package analytics as database.table (the
// caller checks the names), oldest first.
func AttemptHistory(ctx context.Context, conn driver.Conn, table, eventID, endpointID string) ([]AttemptRow, error) {
	q := fmt.Sprintf(`SELECT attempt, tier, outcome, skipped, status_code, error_class, error, latency_ms, started_at
FROM %s FINAL
WHERE event_id = ? AND endpoint_id = ?
ORDER BY started_at, attempt`, table)
	rows, err := conn.Query(ctx, q, eventID, endpointID)
	if err != nil {
		return nil, fmt.Errorf("query attempts of event %s to %s: %w", eventID, endpointID, err)
	}
	defer rows.Close()
	var out []AttemptRow
	for rows.Next() {
		var a AttemptRow
		var skipped uint8
		if err := rows.Scan(&a.Attempt, &a.Tier, &a.Outcome, &skipped, &a.StatusCode, &a.ErrorClass, &a.Error, &a.LatencyMS, &a.StartedAt); err != nil {
			return nil, fmt.Errorf("read attempts of event %s to %s: %w", eventID, endpointID, err)
		}
		a.Skipped = skipped != 0
		out = append(out, a)
	}
	return out, rows.Err()
}
