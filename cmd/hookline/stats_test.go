package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/testenv"
)

// stats --event shows every attempt of that event per endpoint, as text and
// as JSON, and --query runs a widget query of the pack.
func TestStatsEventHistory(t *testing.T) {
	addr := testenv.ClickHouse(t)
	ctx := t.Context()
	conn, err := analytics.Open(ctx, analytics.ConnOptions{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "hookline_test_stats_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		_ = conn.Close()
	})
	if err := analytics.Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Add(-2 * 24 * time.Hour).Truncate(time.Second)
	row := func(endpoint string, n int, tier string, outcome processors.Outcome, class processors.ErrorClass, status int, next string) analytics.Row {
		at := start.Add(time.Duration(n) * time.Minute)
		return analytics.Row{Attempt: processors.Attempt{
			V: processors.AttemptVersion, AttemptID: endpoint + "/" + tier, EventID: "evt-1", EndpointID: endpoint,
			Attempt: n, Tier: tier, Outcome: outcome, ErrorClass: class, StatusCode: status, NextTier: next,
			Error: "HTTP " + strconv.Itoa(status), LatencyMS: 12, StartedAt: at, FinishedAt: at.Add(time.Second), FirstAttempt: start,
		}}
	}
	rows := []analytics.Row{
		row("ep-1", 1, "events", processors.OutcomeRetry, processors.ClassHTTP5xx, 503, "retry.30s"),
		row("ep-1", 2, "retry.30s", processors.OutcomeDelivered, processors.ClassNone, 200, ""),
		row("ep-2", 1, "events", processors.OutcomeDeadLettered, processors.ClassHTTP410, 410, "dlq"),
	}
	if err := analytics.InsertRows(ctx, conn, db, rows); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := stats(ctx, []string{"--clickhouse", addr, "--database", db, "--event", "evt-1"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"event evt-1 to endpoint ep-1", "event evt-1 to endpoint ep-2", "retry.30s", "http_410", "dead_lettered"} {
		if !strings.Contains(text, want) {
			t.Errorf("stats --event output lacks %q (the default window must reach two days back):\n%s", want, text)
		}
	}

	out.Reset()
	if err := stats(ctx, []string{"--clickhouse", addr, "--database", db, "--event", "evt-1", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Event    string                   `json:"event_id"`
		Attempts []analytics.EventAttempt `json:"attempts"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("stats --event --json: %v\n%s", err, out.String())
	}
	if got.Event != "evt-1" || len(got.Attempts) != 3 || got.Attempts[1].Outcome != "delivered" || got.Attempts[2].EndpointID != "ep-2" {
		t.Errorf("stats --event --json: %+v", got)
	}

	out.Reset()
	if err := stats(ctx, []string{"--clickhouse", addr, "--database", db, "--query", "retry_queue_depth", "--since", "72h"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "retry.30s") {
		t.Errorf("stats --query retry_queue_depth:\n%s", out.String())
	}
}
