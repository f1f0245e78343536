package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
)

// loadClickHouse loads the settings of the commands that work on ClickHouse
// alone (migrate, stats) through config.Load, as every subcommand does:
// flags over HOOKLINE_* environment over the --config file over the
// defaults, serve's included (no clickhouse address unless one is given).
// Their --database stays as the short name of --clickhouse-database.
// getenv is os.Getenv when nil.
func loadClickHouse(fs *flag.FlagSet, args []string, getenv func(string) string) (config.Config, error) {
	db := fs.String("database", "", "ClickHouse `database` of the attempts tables: the same as --clickhouse-database (default hookline)")
	cfg, err := config.Load(fs, args, getenv)
	if err != nil {
		return config.Config{}, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["database"] {
		if given["clickhouse-database"] && *db != cfg.ClickHouseDatabase {
			return config.Config{}, errors.New("--database and --clickhouse-database name different databases: give one")
		}
		if err := analytics.CheckDatabaseName(*db); err != nil {
			return config.Config{}, fmt.Errorf("--database: %w", err)
		}
		cfg.ClickHouseDatabase = *db
	}
	return cfg, nil
}

// errNoClickHouse is the answer of a command that needs ClickHouse when no
// address is configured.
var errNoClickHouse = errors.New("no ClickHouse address: give --clickhouse HOST:PORT, HOOKLINE_CLICKHOUSE or clickhouse in the --config file")
