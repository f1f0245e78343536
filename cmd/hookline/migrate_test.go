package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/testenv"
)

// A retention is read like every setting, and must be whole days; unset,
// it stays zero, so migrate leaves the table's TTL as it is.
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
	noEnv := func(string) string { return "" }
	for _, tt := range tests {
		var args []string
		if tt.in != "" {
			args = []string{"--analytics-retention", tt.in}
		}
		m, err := loadMigrate(args, noEnv)
		got := m.retention.Raw
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("migrate --analytics-retention %q = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "analytics-retention") && !strings.Contains(err.Error(), "analytics_retention") {
			t.Errorf("error %q does not name the setting", err)
		}
	}
}

// migrate and stats load their settings as serve does: the environment and
// the config file count, --database (their name of clickhouse_database)
// beats the environment, and with nothing given, the ClickHouse address is
// serve's.
func TestClickHouseCommandsLoadSettingsLikeServe(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	serve, err := config.Load(flag.NewFlagSet("serve", flag.ContinueOnError), nil, env())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(file, []byte("clickhouse: ch-file:9000\nclickhouse_database: filedb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		args            []string
		env             func(string) string
		addr, db        string
		rawRetention    time.Duration
		rollupRetention time.Duration
	}{
		{"defaults are serve's", nil, env(), serve.ClickHouse, serve.ClickHouseDatabase, 0, 0},
		{"environment", nil, env("HOOKLINE_CLICKHOUSE", "ch-env:9000", "HOOKLINE_CLICKHOUSE_DATABASE", "envdb", "HOOKLINE_ANALYTICS_RETENTION", "720h"),
			"ch-env:9000", "envdb", 30 * config.Day, 0},
		{"--database beats the environment", []string{"--database", "flagdb"}, env("HOOKLINE_CLICKHOUSE", "ch-env:9000", "HOOKLINE_CLICKHOUSE_DATABASE", "envdb"),
			"ch-env:9000", "flagdb", 0, 0},
		{"--clickhouse beats the environment", []string{"--clickhouse", "ch-flag:9000"}, env("HOOKLINE_CLICKHOUSE", "ch-env:9000"),
			"ch-flag:9000", serve.ClickHouseDatabase, 0, 0},
		{"config file", []string{"--config", file}, env(), "ch-file:9000", "filedb", 0, 0},
		{"environment beats the file", nil, env("HOOKLINE_CONFIG", file, "HOOKLINE_CLICKHOUSE_DATABASE", "envdb", "HOOKLINE_ANALYTICS_ROLLUP_RETENTION", "9600h"),
			"ch-file:9000", "envdb", 0, 400 * config.Day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := loadMigrate(tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if m.cfg.ClickHouse != tt.addr || m.cfg.ClickHouseDatabase != tt.db {
				t.Errorf("migrate: clickhouse %q, database %q; want %q, %q", m.cfg.ClickHouse, m.cfg.ClickHouseDatabase, tt.addr, tt.db)
			}
			if m.retention.Raw != tt.rawRetention || m.retention.Rollup != tt.rollupRetention {
				t.Errorf("migrate: retention %+v; want raw %v, rollup %v", m.retention, tt.rawRetention, tt.rollupRetention)
			}
			// stats loads through the same function.
			cfg, err := loadClickHouse(flag.NewFlagSet("stats", flag.ContinueOnError), tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ClickHouse != tt.addr || cfg.ClickHouseDatabase != tt.db {
				t.Errorf("stats: clickhouse %q, database %q; want %q, %q", cfg.ClickHouse, cfg.ClickHouseDatabase, tt.addr, tt.db)
			}
		})
	}
}

// With no address anywhere (serve's default: no ClickHouse), migrate and
// stats say so instead of trying some address; with one in the
// environment, they use it.
func TestClickHouseCommandsNeedAnAddress(t *testing.T) {
	t.Setenv("HOOKLINE_CLICKHOUSE", "")
	t.Setenv("HOOKLINE_CONFIG", "")
	if err := runMigrate(t.Context(), nil); !errors.Is(err, errNoClickHouse) {
		t.Errorf("migrate without an address: %v; want %v", err, errNoClickHouse)
	}
	if err := stats(t.Context(), nil, io.Discard); !errors.Is(err, errNoClickHouse) {
		t.Errorf("stats without an address: %v; want %v", err, errNoClickHouse)
	}
	t.Setenv("HOOKLINE_CLICKHOUSE", "127.0.0.1:1") // nothing listens there
	for name, err := range map[string]error{
		"migrate": runMigrate(t.Context(), nil),
		"stats":   stats(t.Context(), nil, io.Discard),
	} {
		if err == nil || errors.Is(err, errNoClickHouse) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%s with HOOKLINE_CLICKHOUSE=127.0.0.1:1: %v; want it to try that address", name, err)
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
		_ = conn.Close()
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
