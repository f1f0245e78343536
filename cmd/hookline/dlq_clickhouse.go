package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dlq"
)

// What `hookline dlq` reads from and writes to ClickHouse.

// attemptHistory returns a lookup of a pair's attempts in ClickHouse, the
// pack's event_history query over all time, or nil when no clickhouse is
// configured. Call closeFn when done.
func attemptHistory(ctx context.Context, cfg config.Config) (lookup func(eventID, endpointID string) ([]analytics.EventAttempt, error), closeFn func(), err error) {
	if cfg.ClickHouse == "" {
		return nil, func() {}, nil
	}
	if err := analytics.CheckDatabaseName(cfg.ClickHouseDatabase); err != nil {
		return nil, nil, err
	}
	conn, err := analytics.Open(ctx, analytics.ConnOptionsFrom(cfg))
	if err != nil {
		return nil, nil, err
	}
	lookup = func(eventID, endpointID string) ([]analytics.EventAttempt, error) {
		all, err := analytics.EventHistory(ctx, conn, cfg.ClickHouseDatabase, eventID, time.Unix(0, 0), time.Now().Add(time.Minute))
		return slices.DeleteFunc(all, func(a analytics.EventAttempt) bool { return a.EndpointID != endpointID }), err
	}
	return lookup, func() { _ = conn.Close() }, nil
}

// auditToClickHouse copies the replay's latest audit record (whatever its
// outcome, interrupted included) into the ClickHouse audit table.
func auditToClickHouse(ctx context.Context, cfg config.Config, d *dlq.Client, replayID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs, err := d.Replays(ctx)
	if err != nil {
		return fmt.Errorf("read the audit topic for clickhouse: %w", err)
	}
	var latest *dlq.AuditRecord
	for i := range rs {
		if rs[i].Latest.ReplayID == replayID {
			latest = &rs[i].Latest
		}
	}
	if latest == nil {
		return nil // nothing was recorded: the replay did not start
	}
	conn, err := analytics.Open(ctx, analytics.ConnOptionsFrom(cfg))
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", cfg.ClickHouse, err)
	}
	defer func() { _ = conn.Close() }()
	if err := analytics.MigrateRetention(ctx, conn, cfg.ClickHouseDatabase, analytics.RetentionFrom(cfg)); err != nil {
		return err
	}
	return analytics.RecordReplay(ctx, conn, cfg.ClickHouseDatabase, analytics.ReplayRow{
		ReplayID: latest.ReplayID, Operator: latest.Operator, StartedAt: latest.StartedAt, At: latest.At,
		Target: string(latest.Target), Topic: latest.Topic, Filters: latest.Filter.String(),
		Matched: uint64(latest.Matched), Sent: uint64(latest.Sent), Skipped: uint64(latest.Skipped),
		Runs: uint32(latest.Runs), Outcome: string(latest.Outcome), Error: latest.Error,
	})
}
