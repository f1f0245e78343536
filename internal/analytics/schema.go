package analytics

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/internal/config"
)

// Tables and views Migrate creates in the analytics database.
const (
	TableAttempts   = "attempts"
	TableRejected   = "attempts_rejected"
	TableRollup     = "attempts_1m"
	ViewRollup      = "attempts_1m_mv"
	TableMigrations = "schema_migrations"
)

// Retention is how long the analytics tables keep rows: Raw for attempts
// and rejected records, Rollup for the per-minute rollup. Servers with TTL
// (20.1 on) apply it as a TTL; on 18.x Prune drops old monthly partitions.
// Both are whole days; a zero field means DefaultRetention's when a table
// is created, and leaves an existing table's TTL as it is.
type Retention struct {
	Raw, Rollup time.Duration
}

// DefaultRetention is 90 days of raw rows and 400 days of rollup
// (config.Default's analytics_retention and analytics_rollup_retention).
var DefaultRetention = Retention{Raw: 90 * day, Rollup: 400 * day}

const day = 24 * time.Hour

// RetentionFrom returns the retention settings of cfg.
func RetentionFrom(cfg config.Config) Retention {
	return Retention{Raw: cfg.AnalyticsRetention, Rollup: cfg.AnalyticsRollupRetention}
}

// orDefault fills zero fields from DefaultRetention.
func (r Retention) orDefault() Retention {
	if r.Raw <= 0 {
		r.Raw = DefaultRetention.Raw
	}
	if r.Rollup <= 0 {
		r.Rollup = DefaultRetention.Rollup
	}
	return r
}

// days is d in whole days, at least 1.
func days(d time.Duration) int {
	return max(1, int(d/day))
}

// Flavor is the dialect of the schema for one server: 18.x/19.x get plain
// DateTime and String columns without TTL or codecs; 20.x and later get
// DateTime64(3), LowCardinality, codecs and TTL retention.
type Flavor struct {
	Major, Minor uint64
}

// Modern reports whether the server has DateTime64, LowCardinality by
// default, column codecs and TTL (all present from 20.1 on).
func (f Flavor) Modern() bool { return f.Major >= 20 }

func (f Flavor) String() string { return fmt.Sprintf("%d.%d", f.Major, f.Minor) }

// DetectFlavor asks the server for its version.
func DetectFlavor(conn driver.Conn) (Flavor, error) {
	v, err := conn.ServerVersion()
	if err != nil {
		return Flavor{}, fmt.Errorf("detect clickhouse version: %w", err)
	}
	return Flavor{Major: v.Version.Major, Minor: v.Version.Minor}, nil
}

func (f Flavor) timeType() string {
	if f.Modern() {
		return "DateTime64(3)"
	}
	return "DateTime"
}

// lc is the type of a low-cardinality string column.
func (f Flavor) lc() string {
	if f.Modern() {
		return "LowCardinality(String)"
	}
	return "String"
}

// codec returns a column codec clause, or nothing where codecs do not exist.
func (f Flavor) codec(c string) string {
	if f.Modern() {
		return " CODEC(" + c + ")"
	}
	return ""
}

// ttl returns a table TTL clause, or nothing where TTL does not exist.
func (f Flavor) ttl(column string, keep time.Duration) string {
	if f.Modern() {
		return "\nTTL " + ttlExpr(column, keep)
	}
	return ""
}

func ttlExpr(column string, keep time.Duration) string {
	return fmt.Sprintf("toDateTime(%s) + INTERVAL %d DAY", column, days(keep))
}

// ttlTable is a table with a retention: the time column its TTL and its
// partitions (toYYYYMM of that column) are based on.
type ttlTable struct {
	name, column string
	keep         func(Retention) time.Duration
}

var ttlTables = []ttlTable{
	{TableAttempts, "started_at", func(r Retention) time.Duration { return r.Raw }},
	{TableRejected, "received_at", func(r Retention) time.Duration { return r.Raw }},
	{TableRollup, "minute", func(r Retention) time.Duration { return r.Rollup }},
}

// ttlDaysRE finds the days of a TTL as servers print it in engine_full:
// "TTL toDateTime(started_at) + toIntervalDay(90)".
var ttlDaysRE = regexp.MustCompile(`\bTTL\b.*?toIntervalDay\((\d+)\)`)

// retentionChanges returns the ALTER statements that make each table's TTL
// match r, given each table's engine_full from system.tables. Tables whose
// TTL already matches, or whose retention field is zero, are left alone;
// servers without TTL get none.
func retentionChanges(f Flavor, db string, r Retention, engines map[string]string) []string {
	if !f.Modern() {
		return nil
	}
	var out []string
	for _, t := range ttlTables {
		keep := t.keep(r)
		engine, ok := engines[t.name]
		if keep <= 0 || !ok {
			continue
		}
		if m := ttlDaysRE.FindStringSubmatch(engine); m != nil && m[1] == strconv.Itoa(days(keep)) {
			continue
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL %s", db, t.name, ttlExpr(t.column, keep)))
	}
	return out
}

// migration is one schema version: statements rendered for the server's
// flavor and database. Every statement is idempotent on its own, so a
// migration interrupted halfway is simply applied again.
type migration struct {
	version    uint32
	name       string
	statements func(f Flavor, db string, r Retention) []string
}

var migrations = []migration{
	{1, "attempts and rejected records", migrateAttempts},
	{2, "per-minute rollup", migrateRollup},
	{3, "dlq replay audit", migrateReplays},
}

// SchemaVersion is the newest schema version Migrate applies.
func SchemaVersion() uint32 { return migrations[len(migrations)-1].version }

func migrateAttempts(f Flavor, db string, r Retention) []string {
	t, lc := f.timeType(), f.lc()
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
	attempt_id String,
	event_id String%[5]s,
	endpoint_id %[4]s,
	tenant %[4]s,
	event_type %[4]s,
	attempt UInt32,
	tier %[4]s,
	outcome %[4]s,
	skipped UInt8,
	status_code UInt16,
	error_class %[4]s,
	error String%[5]s,
	latency_ms Float64,
	request_bytes UInt32,
	response_bytes UInt32,
	next_tier %[4]s,
	started_at %[3]s%[6]s,
	finished_at %[3]s%[6]s,
	first_attempt_at %[3]s%[6]s,
	kafka_topic %[4]s,
	kafka_partition Int32,
	kafka_offset Int64,
	inserted_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(started_at)
ORDER BY (endpoint_id, attempt_id)%[7]s`,
			db, TableAttempts, t, lc, f.codec("ZSTD(1)"), f.codec("Delta, ZSTD(1)"), f.ttl("started_at", r.Raw)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
	kafka_topic String,
	kafka_partition Int32,
	kafka_offset Int64,
	value String,
	error String,
	received_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)%[3]s`,
			db, TableRejected, f.ttl("received_at", r.Raw)),
	}
}

// rollupSelect aggregates attempts per minute. Attempt counts are
// uniqExact states of attempt_id, so rows that reach the view twice (a
// replayed batch, which the raw table collapses later) do not count twice.
func rollupSelect(db string) string {
	return fmt.Sprintf(`SELECT
	toStartOfMinute(toDateTime(started_at)) AS minute,
	endpoint_id,
	tenant,
	tier,
	outcome,
	error_class,
	uniqExactState(attempt_id) AS attempts,
	quantilesTDigestIfState(0.5, 0.95, 0.99)(latency_ms, skipped = 0) AS latency_ms
FROM %s.%s
GROUP BY minute, endpoint_id, tenant, tier, outcome, error_class`, db, TableAttempts)
}

func migrateRollup(f Flavor, db string, r Retention) []string {
	lc := f.lc()
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
	minute DateTime,
	endpoint_id %[3]s,
	tenant %[3]s,
	tier %[3]s,
	outcome %[3]s,
	error_class %[3]s,
	attempts AggregateFunction(uniqExact, String),
	latency_ms AggregateFunction(quantilesTDigestIf(0.5, 0.95, 0.99), Float64, UInt8)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (endpoint_id, minute, tenant, tier, outcome, error_class)%[4]s`,
			db, TableRollup, lc, f.ttl("minute", r.Rollup)),
		fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s TO %s.%s AS\n%s",
			db, ViewRollup, db, TableRollup, rollupSelect(db)),
		// Backfill rows written before the view existed. Counts are
		// uniqExact states, so running this twice changes no count.
		fmt.Sprintf("INSERT INTO %s.%s (minute, endpoint_id, tenant, tier, outcome, error_class, attempts, latency_ms)\n%s",
			db, TableRollup, rollupSelect(db)),
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckDatabaseName rejects names that would need quoting; hookline's
// database names are plain identifiers.
func CheckDatabaseName(db string) error {
	if !identRE.MatchString(db) {
		return fmt.Errorf("database name %q: must match %s", db, identRE)
	}
	return nil
}

// Migrate creates or upgrades the analytics schema in database, choosing
// column types by the server's version. New tables get DefaultRetention;
// existing TTLs are left as they are (MigrateRetention sets them). It is
// idempotent: applied versions are recorded in schema_migrations and
// skipped, and every statement is written to be safe when applied twice, so
// concurrent or interrupted runs converge.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	return MigrateRetention(ctx, conn, database, Retention{})
}

// MigrateRetention is Migrate, and then makes the tables' TTLs match r
// where the server has TTL (zero fields: see Retention). A TTL is altered
// only when it differs from r.
func MigrateRetention(ctx context.Context, conn driver.Conn, database string, r Retention) error {
	if err := CheckDatabaseName(database); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	f, err := DetectFlavor(conn)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", database, err)
	}
	for _, s := range bootstrapStatements(database) {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("migrate %s: bootstrap: %w", database, err)
		}
	}
	applied, err := AppliedVersions(ctx, conn, database)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", database, err)
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for _, s := range m.statements(f, database, r.orDefault()) {
			if err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("migrate %s: version %d (%s): %s: %w", database, m.version, m.name, firstLine(s), err)
			}
		}
		if err := recordMigration(ctx, conn, database, m, f); err != nil {
			return fmt.Errorf("migrate %s: record version %d: %w", database, m.version, err)
		}
	}
	if !f.Modern() {
		return nil
	}
	engines, err := tableEngines(ctx, conn, database)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", database, err)
	}
	for _, s := range retentionChanges(f, database, r, engines) {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("migrate %s: retention: %s: %w", database, s, err)
		}
	}
	return nil
}

// bootstrapStatements create the database and the table of applied versions.
func bootstrapStatements(database string) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + database,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
	version UInt32,
	name String,
	server_version String,
	applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
ORDER BY version`, database, TableMigrations),
	}
}

// tableEngines returns engine_full of every table in database.
func tableEngines(ctx context.Context, conn driver.Conn, database string) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = "+quoteString(database))
	if err != nil {
		return nil, fmt.Errorf("read table engines: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			return nil, fmt.Errorf("read table engines: %w", err)
		}
		out[name] = engine
	}
	return out, rows.Err()
}

// recordMigration inserts the applied version. It uses a batch insert with
// named columns: an INSERT ... VALUES sent through Exec does not complete
// against 18.16 with clickhouse-go v2.
func recordMigration(ctx context.Context, conn driver.Conn, database string, m migration, f Flavor) error {
	b, err := conn.PrepareBatch(ctx, insertStatement(database, TableMigrations, []string{"version", "name", "server_version"}))
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	if err := b.Append(m.version, m.name, f.String()); err != nil {
		return err
	}
	return b.Send()
}

// AppliedVersions returns the schema versions recorded in database.
func AppliedVersions(ctx context.Context, conn driver.Conn, database string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.%s", database, TableMigrations))
	if err != nil {
		return nil, fmt.Errorf("read applied schema versions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied schema versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied schema versions: %w", err)
	}
	return applied, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// quoteString renders s as a ClickHouse string literal.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
