package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/outbox"
)

// defaultClickHouseAddr is the --clickhouse default: $HOOKLINE_CLICKHOUSE,
// else the local server deploy/clickhouse/clickhouse.sh starts.
func defaultClickHouseAddr() string {
	if a := os.Getenv("HOOKLINE_CLICKHOUSE"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// clickhouseFlags registers the ClickHouse connection flags of the commands
// that do without the full configuration (migrate, stats): --clickhouse,
// --clickhouse-username and the clickhouse_tls ones, their defaults read
// from the HOOKLINE_* variables of the same settings. The password is read
// from HOOKLINE_CLICKHOUSE_PASSWORD only, so it stays out of shell history
// and process listings.
func clickhouseFlags(fs *flag.FlagSet) func() (analytics.ConnOptions, error) {
	envBool := func(name string) bool {
		b, _ := strconv.ParseBool(os.Getenv(name))
		return b
	}
	user := os.Getenv("HOOKLINE_CLICKHOUSE_USERNAME")
	if user == "" {
		user = analytics.DefaultUsername
	}
	addr := fs.String("clickhouse", defaultClickHouseAddr(), "ClickHouse native-protocol `address` (env HOOKLINE_CLICKHOUSE)")
	username := fs.String("clickhouse-username", user, "ClickHouse `user` (env HOOKLINE_CLICKHOUSE_USERNAME); the password comes from HOOKLINE_CLICKHOUSE_PASSWORD")
	useTLS := fs.Bool("clickhouse-tls", envBool("HOOKLINE_CLICKHOUSE_TLS"), "connect over TLS (env HOOKLINE_CLICKHOUSE_TLS)")
	caFile := fs.String("clickhouse-tls-ca-file", os.Getenv("HOOKLINE_CLICKHOUSE_TLS_CA_FILE"), "PEM `file` of the CAs that sign ClickHouse's certificate (env HOOKLINE_CLICKHOUSE_TLS_CA_FILE)")
	insecure := fs.Bool("clickhouse-tls-insecure-skip-verify", envBool("HOOKLINE_CLICKHOUSE_TLS_INSECURE_SKIP_VERIFY"), "accept any ClickHouse certificate; testing only")
	return func() (analytics.ConnOptions, error) {
		if !*useTLS && (*caFile != "" || *insecure) {
			return analytics.ConnOptions{}, errors.New("--clickhouse-tls-ca-file and --clickhouse-tls-insecure-skip-verify have no effect without --clickhouse-tls")
		}
		return analytics.ConnOptions{
			Addr:                  *addr,
			Username:              *username,
			Password:              os.Getenv("HOOKLINE_CLICKHOUSE_PASSWORD"),
			TLS:                   *useTLS,
			TLSCAFile:             *caFile,
			TLSInsecureSkipVerify: *insecure,
		}, nil
	}
}

// retentionFlag is a retention flag: empty means unset, so migrate leaves
// the table's TTL as it is.
func retentionFlag(fs *flag.FlagSet, name, usage string) *string {
	env := "HOOKLINE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return fs.String(name, os.Getenv(env), usage+" (env "+env+"); unset: leave the current TTL")
}

func parseRetention(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < config.Day || d%config.Day != 0 {
		return 0, fmt.Errorf("--%s: want a whole number of days in hours (2160h = 90 days), got %q", name, s)
	}
	return d, nil
}

// runMigrate creates or upgrades the ClickHouse analytics schema.
func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hookline migrate [--clickhouse HOST:PORT] [--database NAME] [--analytics-retention 2160h] [--analytics-rollup-retention 9600h] [--prune]")
		fmt.Fprintln(fs.Output(), "       hookline migrate --postgres DSN [--outbox-table NAME]")
		fmt.Fprintln(fs.Output(), "Creates or upgrades the analytics schema, or with --postgres the outbox table (docs/outbox.md); safe to run any number of times.")
		fmt.Fprintln(fs.Output(), "With a retention, sets the TTL of servers that have TTL; --prune drops the monthly partitions older than the retention (18.x has no TTL).")
		fs.PrintDefaults()
	}
	connOpts := clickhouseFlags(fs)
	db := fs.String("database", analytics.DefaultDatabase, "ClickHouse database")
	raw := retentionFlag(fs, "analytics-retention", "how long attempt rows are kept, whole days")
	rollup := retentionFlag(fs, "analytics-rollup-retention", "how long the per-minute rollup is kept, whole days")
	prune := fs.Bool("prune", false, "drop the monthly partitions that ended before now minus the retention (default retention where unset), and log each")
	pg := fs.String("postgres", "", "PostgreSQL `DSN`: create the outbox table there instead (docs/outbox.md); with --clickhouse as well, both")
	table := fs.String("outbox-table", outbox.DefaultTable, "`name` of the outbox table --postgres creates")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	if *pg != "" {
		if err := migrateOutbox(ctx, *pg, *table); err != nil {
			return err
		}
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "clickhouse" })
		if !explicit {
			return nil
		}
	}
	var r analytics.Retention
	var err error
	if r.Raw, err = parseRetention("analytics-retention", *raw); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if r.Rollup, err = parseRetention("analytics-rollup-retention", *rollup); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	opts, err := connOpts()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := analytics.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if err := analytics.MigrateRetention(ctx, conn, *db, r); err != nil {
		return err
	}
	flavor, err := analytics.DetectFlavor(conn)
	if err != nil {
		return err
	}
	fmt.Printf("database %s on %s (clickhouse %s) is at schema version %d\n", *db, opts.Addr, flavor, analytics.SchemaVersion())
	if !*prune {
		return nil
	}
	dropped, err := analytics.Prune(ctx, conn, *db, r, time.Now())
	for _, p := range dropped {
		slog.Info("dropped partition older than the retention", "table", *db+"."+p.Table, "partition", p.Partition, "rows", p.Rows, "before", p.Before.UTC().Format(time.RFC3339))
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
	defer conn.Close(context.WithoutCancel(ctx))
	if err := outbox.Migrate(ctx, conn, table); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Printf("outbox table %s is ready on %s:%d/%s\n", table, conn.Config().Host, conn.Config().Port, conn.Config().Database)
	return nil
}
