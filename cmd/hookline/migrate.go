package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/outbox"
)

// migrateSettings are migrate's settings: the configuration, loaded as
// every subcommand's is, and migrate's own flags.
type migrateSettings struct {
	cfg config.Config
	// retention is the configured retention; a zero field was not set
	// anywhere, and leaves the table's TTL as it is.
	retention analytics.Retention
	prune     bool
	postgres  string
}

func newMigrateFlagSet() (*flag.FlagSet, *bool, *string) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hookline migrate --clickhouse HOST:PORT [--database NAME] [--analytics-retention 2160h] [--analytics-rollup-retention 9600h] [--prune]")
		fmt.Fprintln(fs.Output(), "       hookline migrate --postgres DSN [--outbox-table NAME]")
		fmt.Fprintln(fs.Output(), "Creates or upgrades the analytics schema, or with --postgres the outbox table (docs/outbox.md); safe to run any number of times.")
		fmt.Fprintln(fs.Output(), "With a retention, sets the TTL of servers that have TTL (unset: the current TTL stays); --prune drops the monthly partitions older than the retention (18.x has no TTL).")
		fmt.Fprintln(fs.Output(), "Settings come from the flags, HOOKLINE_* variables and the --config file, as serve's do.")
		fs.PrintDefaults()
	}
	prune := fs.Bool("prune", false, "drop the monthly partitions that ended before now minus the retention (default retention where unset), and log each")
	pg := fs.String("postgres", "", "PostgreSQL `DSN`: create the outbox table there (docs/outbox.md; the same as --outbox-postgres); with a clickhouse address as well, both")
	return fs, prune, pg
}

// loadMigrate parses migrate's command line; getenv is os.Getenv when nil.
func loadMigrate(args []string, getenv func(string) string) (migrateSettings, error) {
	fs, prune, pg := newMigrateFlagSet()
	cfg, err := loadClickHouse(fs, args, getenv)
	if err != nil {
		return migrateSettings{}, err
	}
	if fs.NArg() > 0 {
		return migrateSettings{}, fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	m := migrateSettings{cfg: cfg, prune: *prune, postgres: *pg}
	if m.postgres == "" {
		m.postgres = cfg.OutboxPostgres
	}
	if config.Given(fs, "analytics_retention") {
		m.retention.Raw = cfg.AnalyticsRetention
	}
	if config.Given(fs, "analytics_rollup_retention") {
		m.retention.Rollup = cfg.AnalyticsRollupRetention
	}
	return m, nil
}

// runMigrate creates or upgrades the ClickHouse analytics schema, and the
// outbox table when a PostgreSQL DSN is given.
func runMigrate(ctx context.Context, args []string) error {
	m, err := loadMigrate(args, nil)
	if err != nil {
		return err
	}
	if m.postgres != "" {
		if err := migrateOutbox(ctx, m.postgres, m.cfg.OutboxTable); err != nil {
			return err
		}
		if m.cfg.ClickHouse == "" {
			return nil
		}
	}
	if m.cfg.ClickHouse == "" {
		return fmt.Errorf("migrate: %w (or --postgres DSN for the outbox table)", errNoClickHouse)
	}
	db := m.cfg.ClickHouseDatabase
	opts := analytics.ConnOptionsFrom(m.cfg)
	conn, err := analytics.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if err := analytics.MigrateRetention(ctx, conn, db, m.retention); err != nil {
		return err
	}
	flavor, err := analytics.DetectFlavor(conn)
	if err != nil {
		return err
	}
	fmt.Printf("database %s on %s (clickhouse %s) is at schema version %d\n", db, opts.Addr, flavor, analytics.SchemaVersion())
	if !m.prune {
		return nil
	}
	dropped, err := analytics.Prune(ctx, conn, db, m.retention, time.Now())
	for _, p := range dropped {
		slog.Info("dropped partition older than the retention", "table", db+"."+p.Table, "partition", p.Partition, "rows", p.Rows, "before", p.Before.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Printf("prune: dropped %d partitions older than the retention\n", len(dropped))
	return nil
}

// migrateOutbox creates the outbox table in the database of dsn.
func migrateOutbox(ctx context.Context, dsn, table string) error {
	if err := outbox.ValidateTable(table); err != nil {
		return fmt.Errorf("--outbox-table: %w", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if err := outbox.Migrate(ctx, conn, table); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Printf("outbox table %s is ready on %s:%d/%s\n", table, conn.Config().Host, conn.Config().Port, conn.Config().Database)
	return nil
}
