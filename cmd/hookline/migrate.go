package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

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

// runMigrate creates or upgrades the ClickHouse analytics schema.
func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hookline migrate [--clickhouse HOST:PORT] [--database NAME]")
		fmt.Fprintln(fs.Output(), "Creates or upgrades the analytics schema; safe to run any number of times.")
		fs.PrintDefaults()
	}
	connOpts := clickhouseFlags(fs)
	db := fs.String("database", analytics.DefaultDatabase, "ClickHouse database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
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
	if err := analytics.Migrate(ctx, conn, *db); err != nil {
		return err
	}
	flavor, err := analytics.DetectFlavor(conn)
	if err != nil {
		return err
	}
	fmt.Printf("database %s on %s (clickhouse %s) is at schema version %d\n", *db, opts.Addr, flavor, analytics.SchemaVersion())
	return nil
}
