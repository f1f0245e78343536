package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// EventAttempt is one attempt of an event as the event_history query of
// the pack returns it.
type EventAttempt struct {
	EndpointID string    `json:"endpoint_id"`
	Attempt    uint32    `json:"attempt"`
	Tier       string    `json:"tier"`
	Outcome    string    `json:"outcome"`
	Skipped    bool      `json:"skipped"`
	StatusCode uint16    `json:"status_code"`
	ErrorClass string    `json:"error_class"`
	Error      string    `json:"error"`
	LatencyMS  float64   `json:"latency_ms"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	NextTier   string    `json:"next_tier"`
}

// EventHistory returns every attempt of event that started in [from, to),
// per endpoint in attempt order: the pack's event_history query, for
// `hookline stats --event` and the API.
func EventHistory(ctx context.Context, conn driver.Conn, database, event string, from, to time.Time) ([]EventAttempt, error) {
	q, err := LookupQuery("event_history")
	if err != nil {
		return nil, err
	}
	sql, err := q.Bind(Params{Database: database, Event: event, From: from, To: to})
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("attempt history of event %s: %w", event, err)
	}
	defer func() { _ = rows.Close() }()
	var out []EventAttempt
	for rows.Next() {
		var a EventAttempt
		var skipped uint8
		if err := rows.Scan(&a.EndpointID, &a.Attempt, &a.Tier, &a.Outcome, &skipped, &a.StatusCode,
			&a.ErrorClass, &a.Error, &a.LatencyMS, &a.StartedAt, &a.FinishedAt, &a.NextTier); err != nil {
			return nil, fmt.Errorf("read attempt history of event %s: %w", event, err)
		}
		a.Skipped = skipped != 0
		a.StartedAt, a.FinishedAt = a.StartedAt.UTC(), a.FinishedAt.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read attempt history of event %s: %w", event, err)
	}
	return out, nil
}
