package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hookline/hookline/analytics"
)

// defaultClickHouseAddr is the --clickhouse default: $HOOKLINE_CLICKHOUSE,
// else the local server deploy/clickhouse/clickhouse.sh starts.
func defaultClickHouseAddr() string {
	if a := os.Getenv("HOOKLINE_CLICKHOUSE"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// runMigrate creates or upgrades the ClickHouse analytics schema.
func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hookline migrate [--clickhouse HOST:PORT] [--database NAME]")
		fmt.Fprintln(fs.Output(), "Creates or upgrades the analytics schema; safe to run any number of times.")
		fs.PrintDefaults()
	}
	addr := fs.String("clickhouse", defaultClickHouseAddr(), "ClickHouse native-protocol address (env HOOKLINE_CLICKHOUSE)")
	db := fs.String("database", analytics.DefaultDatabase, "ClickHouse database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	conn, err := analytics.Open(ctx, *addr)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if err := analytics.Migrate(ctx, conn, *db); err != nil {
		return err
	}
	flavor, err := analytics.DetectFlavor(conn)
	if err != nil {
		return err
	}
	fmt.Printf("database %s on %s (clickhouse %s) is at schema version %d\n", *db, *addr, flavor, analytics.SchemaVersion())
	return nil
}
