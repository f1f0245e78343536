package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/testenv"
)

func TestParseRetention(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"720h", 30 * 24 * time.Hour, false},
		{"2160h", 90 * 24 * time.Hour, false},
		{"36h", 0, true},
		{"12h", 0, true},
		{"90d", 0, true},
		{"-720h", 0, true},
	}
	for _, tt := range tests {
		got, err := parseRetention("analytics-retention", tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--analytics-retention") {
			t.Errorf("error %q does not name the flag", err)
		}
	}
}

// migrate with retention flags and --prune runs on 18.16 (no TTL there: the
// retention takes effect by dropping partitions).
func TestMigratePrune(t *testing.T) {
	addr := testenv.ClickHouse(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "hookline_test_migrate_" + hex.EncodeToString(b[:])
	conn, err := analytics.Open(t.Context(), analytics.ConnOptions{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	args := []string{"--clickhouse", addr, "--database", db, "--analytics-retention", "720h", "--analytics-rollup-retention", "9600h", "--prune"}
	for range 2 {
		if err := runMigrate(t.Context(), args); err != nil {
			t.Fatal(err)
		}
	}
	if err := runMigrate(t.Context(), []string{"--clickhouse", addr, "--database", db, "--analytics-retention", "36h"}); err == nil {
		t.Error("migrate took a retention of 36h, not a whole number of days")
	}
}
