package analytics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/processors"
)

func TestDefaultRetentionIsConfigs(t *testing.T) {
	if got := RetentionFrom(config.Default()); got != DefaultRetention {
		t.Errorf("config.Default's retention %+v, analytics.DefaultRetention %+v", got, DefaultRetention)
	}
}

// config cannot refer to analytics' defaults (analytics imports config), so
// this holds them equal.
func TestDefaultConnectionIsConfigs(t *testing.T) {
	d := config.Default()
	if d.ClickHouseDatabase != DefaultDatabase || d.ClickHouseUsername != DefaultUsername {
		t.Errorf("config.Default's clickhouse_database %q, clickhouse_username %q; analytics' defaults %q, %q",
			d.ClickHouseDatabase, d.ClickHouseUsername, DefaultDatabase, DefaultUsername)
	}
}

func TestRetentionChanges(t *testing.T) {
	engines := map[string]string{
		TableAttempts: "ReplacingMergeTree PARTITION BY toYYYYMM(started_at) ORDER BY (endpoint_id, attempt_id) TTL toDateTime(started_at) + toIntervalDay(90) SETTINGS index_granularity = 8192",
		TableRejected: "ReplacingMergeTree PARTITION BY toYYYYMM(received_at) ORDER BY (kafka_topic, kafka_partition, kafka_offset) TTL toDateTime(received_at) + toIntervalDay(90) SETTINGS index_granularity = 8192",
		TableRollup:   "AggregatingMergeTree PARTITION BY toYYYYMM(minute) ORDER BY (endpoint_id, minute, tenant, tier, outcome, error_class) TTL toDateTime(minute) + toIntervalDay(400) SETTINGS index_granularity = 8192",
	}
	modern := Flavor{26, 9}
	tests := []struct {
		name    string
		f       Flavor
		r       Retention
		engines map[string]string
		want    []string
	}{
		{"as created", modern, DefaultRetention, engines, nil},
		{"zero leaves alone", modern, Retention{}, engines, nil},
		{"raw changed", modern, Retention{Raw: 30 * day, Rollup: 400 * day}, engines, []string{
			"ALTER TABLE hl.attempts MODIFY TTL toDateTime(started_at) + INTERVAL 30 DAY",
			"ALTER TABLE hl.attempts_rejected MODIFY TTL toDateTime(received_at) + INTERVAL 30 DAY",
		}},
		{"rollup changed", modern, Retention{Rollup: 800 * day}, engines, []string{
			"ALTER TABLE hl.attempts_1m MODIFY TTL toDateTime(minute) + INTERVAL 800 DAY",
		}},
		{"no TTL yet", modern, Retention{Raw: 90 * day}, map[string]string{TableAttempts: "ReplacingMergeTree ORDER BY attempt_id"}, []string{
			"ALTER TABLE hl.attempts MODIFY TTL toDateTime(started_at) + INTERVAL 90 DAY",
		}},
		{"18.16 has no TTL", Flavor{18, 16}, Retention{Raw: 30 * day}, engines, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retentionChanges(tt.f, "hl", tt.r, tt.engines); !slices.Equal(got, tt.want) {
				t.Errorf("changes\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMonthEnd(t *testing.T) {
	tests := []struct {
		partition string
		want      time.Time
		ok        bool
	}{
		{"202401", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{"202412", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"202413", time.Time{}, false},
		{"tuple()", time.Time{}, false},
		{"2024011", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := monthEnd(tt.partition)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("monthEnd(%q) = %v, %v; want %v, %v", tt.partition, got, ok, tt.want, tt.ok)
		}
	}
}

// On 18.16, which has no TTL, Prune drops the monthly partitions that ended
// before now minus the retention, in the raw tables and the rollup, and
// keeps every partition that holds a row inside the retention.
func TestPruneDropsOldPartitions(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx := t.Context()
	if err := MigrateRetention(ctx, conn, db, Retention{Raw: 30 * day}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
	var rows []Row
	for i, at := range []time.Time{
		time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), // March, April: ended long before 15 June
		time.Date(2026, 4, 30, 23, 0, 0, 0, time.UTC),
		time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC), // May ended 1 June, before 15 June: dropped
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),     // June ends after 15 June: kept whole
		time.Date(2026, 7, 14, 0, 0, 0, 0, time.UTC),
	} {
		rows = append(rows, fixtureRow("ep-a", "t1", fmt.Sprintf("e-%d", i), 1, "events", processors.OutcomeDelivered, processors.ClassNone, 200, 10, at))
	}
	if err := InsertRows(ctx, conn, db, rows); err != nil {
		t.Fatal(err)
	}
	r := Retention{Raw: 30 * day, Rollup: 90 * day}
	dropped, err := Prune(ctx, conn, db, r, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range dropped {
		got = append(got, fmt.Sprintf("%s/%s/%d", p.Table, p.Partition, p.Rows))
	}
	// Rollup (90 days: before 16 April) drops March only.
	want := []string{"attempts/202603/1", "attempts/202604/1", "attempts/202605/1", "attempts_1m/202603/1"}
	if !slices.Equal(got, want) {
		t.Errorf("dropped %q, want %q", got, want)
	}
	if n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.attempts", db)); err != nil || n != 2 {
		t.Errorf("attempts left: %d, %v; want the 2 of June and July", n, err)
	}
	if n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT uniqExactMerge(attempts) FROM %s.attempts_1m", db)); err != nil || n != 4 {
		t.Errorf("rollup attempts left: %d, %v; want 4 (April on)", n, err)
	}
	// Again: nothing more to drop.
	if again, err := Prune(ctx, conn, db, r, now); err != nil || len(again) != 0 {
		t.Errorf("second prune dropped %v, %v; want nothing", again, err)
	}
}

// serve's pruner drops the expired partitions as soon as it starts, and
// logs each one.
func TestPrunerDropsAtStartAndLogs(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-200 * day)
	if err := InsertRows(ctx, conn, db, []Row{fixtureRow("ep-a", "t1", "e-old", 1, "events", processors.OutcomeDelivered, processors.ClassNone, 200, 10, old)}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		runPruner(ctx, conn, db, Retention{Raw: 90 * day, Rollup: 90 * day}, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	waitFor(t, 30*time.Second, "old partition dropped", func() (bool, string) {
		n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.attempts", db))
		return err == nil && n == 0, fmt.Sprintf("%d rows, %v", n, err)
	})
	cancel()
	<-done
	partition := old.Format("200601")
	for _, table := range []string{TableAttempts, TableRollup} {
		if want := "table=" + db + "." + table + " partition=" + partition; !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
