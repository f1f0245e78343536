package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/testenv"
)

// runDemoJSON runs the demo with args and decodes its JSON summary.
func runDemoJSON(t *testing.T, args ...string) DemoSummary {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	collected := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		collected <- b
	}()
	stdout := os.Stdout
	os.Stdout = w
	runErr := runDemo(t.Context(), append([]string{"--json"}, args...))
	os.Stdout = stdout
	_ = w.Close()
	out := <-collected
	if runErr != nil {
		t.Fatalf("demo %v: %v\n%s", args, runErr, out)
	}
	var s DemoSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("demo summary: %v\n%s", err, out)
	}
	return s
}

// The demo can be run again and again against one ClickHouse: each run
// checks and reports only its own rows, and a later run leaves an earlier
// run's rows as they were (no collapsing into one another).
func TestDemoClickHouseCountsOnlyItsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline twice, about 20 s each")
	}
	addr := testenv.ClickHouse(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "hookline_test_demo_" + hex.EncodeToString(b[:])
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

	var runs []DemoSummary
	for range 2 {
		s := runDemoJSON(t, "--events", "150", "--clickhouse", addr, "--clickhouse-database", db)
		ch := s.ClickHouse
		if ch == nil || ch.Database != db {
			t.Fatalf("summary's clickhouse part %+v, want database %s", ch, db)
		}
		if int(ch.RowsByOutcome["dead_lettered"]) != s.DeadLettered || int(ch.RowsByOutcome["delivered"]) < s.Delivered {
			t.Errorf("run %s: rows %v, but %d events delivered and %d dead-lettered", ch.Tenant, ch.RowsByOutcome, s.Delivered, s.DeadLettered)
		}
		runs = append(runs, s)
	}
	if runs[0].ClickHouse.Tenant == runs[1].ClickHouse.Tenant {
		t.Fatalf("both runs used tenant %s", runs[0].ClickHouse.Tenant)
	}
	var total uint64
	for _, s := range runs {
		got, err := analytics.CountTenantByOutcome(t.Context(), conn, db, s.ClickHouse.Tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, s.ClickHouse.RowsByOutcome) {
			t.Errorf("after both runs, run %s has rows %v, want the %v it reported", s.ClickHouse.Tenant, got, s.ClickHouse.RowsByOutcome)
		}
		for _, n := range got {
			total += n
		}
	}
	all, err := analytics.CountByOutcome(t.Context(), conn, db)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range all {
		n += v
	}
	if n != total {
		t.Errorf("database holds %d rows, the two runs %d", n, total)
	}
}

func TestDemoWritesOutsideServesDatabase(t *testing.T) {
	d, cleanup, err := localDefaults("demo")
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if demoDatabase == d.ClickHouseDatabase || demoDatabase == analytics.DefaultDatabase {
		t.Errorf("demo database %s is serve's", demoDatabase)
	}
}
