package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/internal/testreport"
)

// chdb is a ClickHouse engine (chdb-core) whose data lives in dir, driven
// through testdata/chdb_run.py: every call is one process and one session.
type chdb struct {
	python, dir string
}

func newChdb(t *testing.T) *chdb {
	return &chdb{python: testenv.CHDB(t), dir: filepath.Join(t.TempDir(), "chdb")}
}

// chStep is one statement, or a query when format is set.
type chStep struct {
	SQL    string `json:"sql"`
	Format string `json:"format,omitempty"`
}

// chCompact is a JSONCompact result.
type chCompact struct {
	Meta []struct{ Name, Type string } `json:"meta"`
	Data [][]json.RawMessage           `json:"data"`
}

// run runs steps in one session and returns each query's JSONCompact result
// (nil for statements) and the engine's version.
func (c *chdb) run(t *testing.T, steps ...chStep) ([]*chCompact, string) {
	t.Helper()
	in, err := json.Marshal(map[string]any{"path": c.dir, "steps": steps})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), c.python, "testdata/chdb_run.py")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chdb: %v\n%s", err, stderr.String())
	}
	var out struct {
		Version string            `json:"version"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("chdb output: %v\n%s", err, stdout.String())
	}
	res := make([]*chCompact, len(out.Results))
	for i, r := range out.Results {
		if string(r) == "null" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.UseNumber()
		res[i] = new(chCompact)
		if err := dec.Decode(res[i]); err != nil {
			t.Fatalf("chdb result %d: %v", i, err)
		}
	}
	return res, out.Version
}

// query runs one query and returns its result.
func (c *chdb) query(t *testing.T, sql string) *chCompact {
	t.Helper()
	res, _ := c.run(t, chStep{SQL: sql, Format: "JSONCompact"})
	return res[0]
}

// chFlavor is the flavor Migrate renders for the engine under test.
func chFlavor(t *testing.T, version string) Flavor {
	t.Helper()
	parts := strings.Split(version, ".")
	if len(parts) < 2 {
		t.Fatalf("chdb version %q", version)
	}
	major, err1 := strconv.ParseUint(parts[0], 10, 64)
	minor, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("chdb version %q", version)
	}
	return Flavor{Major: major, Minor: minor}
}

// migrateSteps are what Migrate runs on a server of flavor f for a fresh
// database: the bootstrap, every migration, the record of each version (a
// plain INSERT here; on 18.16 Migrate needs a batch insert for it) and the
// retention changes against the given engines.
func migrateSteps(f Flavor, db string, r Retention) []chStep {
	var steps []chStep
	for _, s := range bootstrapStatements(db) {
		steps = append(steps, chStep{SQL: s})
	}
	for _, m := range migrations {
		for _, s := range m.statements(f, db, r.orDefault()) {
			steps = append(steps, chStep{SQL: s})
		}
		steps = append(steps, chStep{SQL: fmt.Sprintf("INSERT INTO %s.%s (version, name, server_version) VALUES (%d, %s, %s)",
			db, TableMigrations, m.version, quoteString(m.name), quoteString(f.String()))})
	}
	return steps
}

// insertStep inserts rows through the sink's column list (attemptColumns,
// the values of Row.values) as JSONEachRow.
func insertStep(t *testing.T, db string, rows []Row) chStep {
	t.Helper()
	var b strings.Builder
	b.WriteString(insertStatement(db, TableAttempts, attemptColumns) + " FORMAT JSONEachRow\n")
	for _, r := range rows {
		obj := map[string]any{}
		for i, v := range r.values() {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format("2006-01-02 15:04:05.000")
			}
			obj[attemptColumns[i]] = v
		}
		line, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return chStep{SQL: b.String()}
}

// canonical renders a value from clickhouse-go (18.16) the way canonicalJSON
// renders the same value from chdb's JSON, so the two compare as strings.
func canonical(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999")
	case float32:
		return canonical(float64(x))
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// canonicalJSON renders a JSONCompact value of a column of type typ.
func canonicalJSON(t *testing.T, raw json.RawMessage, typ string) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("chdb value %s: %v", raw, err)
	}
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return strconv.FormatUint(u, 10)
		}
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("chdb number %s: %v", x, err)
		}
		return canonical(f)
	case string:
		if strings.HasPrefix(typ, "DateTime") {
			tm, err := time.Parse("2006-01-02 15:04:05.999", x)
			if err != nil {
				t.Fatalf("chdb %s value %q: %v", typ, x, err)
			}
			return canonical(tm)
		}
		return x
	}
	return fmt.Sprint(v)
}

// flavorType maps a column type to what it would be on 18.16 without its
// annotations, so that the two servers' types compare:
//   - DateTime64(3) is the modern flavour's DateTime (milliseconds; the
//     fixture's times are whole seconds, so the values still compare);
//   - LowCardinality(T) is the modern flavour's T;
//   - DateTime('Etc/UTC'): 18.16 names the time zone of toStartOfHour's
//     result in its type, 26.9 does not; both are the same instants.
func flavorType(typ string) string {
	switch {
	case typ == "DateTime64(3)", strings.HasPrefix(typ, "DateTime("):
		return "DateTime"
	case strings.HasPrefix(typ, "LowCardinality(") && strings.HasSuffix(typ, ")"):
		return flavorType(strings.TrimSuffix(strings.TrimPrefix(typ, "LowCardinality("), ")"))
	}
	return typ
}

// isQuantileColumn: the latency percentiles read from the rollup's
// quantilesTDigest states. They are the one place the flavours must differ:
// on a few samples 18.16's t-digest interpolates between neighbouring
// samples (p50 of 10, 20 ... 100 ms is 55) while 26.9's returns a sample
// (50). So they are not compared for equality; instead both must be
// present or absent (NaN) alike, and both must pass the bounds the pack
// case checks (p50 of ep-a between 40 and 70, and so on).
func isQuantileColumn(name string) bool {
	return strings.HasSuffix(name, "_ms") && strings.HasPrefix(name, "p")
}

// goValue converts a chdb JSON value of type typ to the Go type that
// clickhouse-go gives for it, for the pack cases' checks.
func goValue(t *testing.T, raw json.RawMessage, typ string) any {
	t.Helper()
	s := canonicalJSON(t, raw, typ)
	switch base := flavorType(typ); {
	case strings.HasPrefix(base, "Float"):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("chdb %s value %s: %v", typ, raw, err)
		}
		return f
	case strings.HasPrefix(base, "UInt"):
		u, _ := strconv.ParseUint(s, 10, 64)
		return u
	case strings.HasPrefix(base, "Int"):
		i, _ := strconv.ParseInt(s, 10, 64)
		return i
	case base == "DateTime":
		tm, _ := time.Parse("2006-01-02 15:04:05.999", s)
		return tm
	}
	return s
}

// On the ClickHouse 26.9 engine (chdb-core), every migration of the modern
// flavour runs, and every query of the pack, over the rows TestQueryPack
// inserts into 18.16 (inserted twice, as a replay would, through the sink's
// column list), gives the same columns, the same types modulo the flavour
// differences and the same values as on 18.16.
func TestModernEngineMatches1816(t *testing.T) {
	conn := testConn(t)
	ch := newChdb(t)
	db := testDatabase(t, conn)
	ctx := t.Context()

	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := InsertRows(ctx, conn, db, fixture()); err != nil {
			t.Fatal(err)
		}
	}

	_, version := ch.run(t)
	f := chFlavor(t, version)
	if !f.Modern() || f.Major < 26 {
		t.Fatalf("chdb engine %s: want 26.x, the modern flavour", version)
	}
	t.Logf("chdb engine ClickHouse %s", version)
	steps := migrateSteps(f, db, Retention{})
	steps = append(steps, insertStep(t, db, fixture()), insertStep(t, db, fixture()))
	cases := packCases(db)
	for _, c := range cases {
		q, err := LookupQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		sql, err := q.Bind(c.p.withDefaults(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, chStep{SQL: sql, Format: "JSONCompact"})
	}
	res, _ := ch.run(t, steps...)
	modern := res[len(res)-len(cases):]

	covered := map[string]bool{}
	for i, c := range cases {
		covered[c.query] = true
		t.Run(c.query+"/"+c.name, func(t *testing.T) {
			q, _ := LookupQuery(c.query)
			old, err := RunQuery(ctx, conn, q, c.p)
			if err != nil {
				t.Fatal(err)
			}
			m := modern[i]
			var names, types []string
			for _, col := range m.Meta {
				names = append(names, col.Name)
				types = append(types, flavorType(col.Type))
			}
			if !slices.Equal(names, old.Columns) {
				t.Fatalf("columns on 26.9 %v, on 18.16 %v", names, old.Columns)
			}
			var oldTypes []string
			for _, typ := range old.Types {
				oldTypes = append(oldTypes, flavorType(typ))
			}
			if !slices.Equal(types, oldTypes) {
				t.Errorf("types on 26.9 %v, on 18.16 %v (both without the flavour differences)", types, oldTypes)
			}
			if len(m.Data) != len(old.Rows) {
				t.Fatalf("%d rows on 26.9, %d on 18.16", len(m.Data), len(old.Rows))
			}
			modernResult := Result{Query: q, Columns: names}
			for r := range old.Rows {
				row := make([]any, len(names))
				for j, name := range names {
					row[j] = goValue(t, m.Data[r][j], m.Meta[j].Type)
					got, want := canonicalJSON(t, m.Data[r][j], m.Meta[j].Type), canonical(old.Rows[r][j])
					if got == want || isQuantileColumn(name) && (got == "nan") == (want == "nan") {
						continue
					}
					t.Errorf("row %d column %s: 26.9 %s, 18.16 %s", r, name, got, want)
				}
				modernResult.Rows = append(modernResult.Rows, row)
			}
			if c.check != nil {
				c.check(t, modernResult)
			}
		})
	}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !covered[q.Name] {
			t.Errorf("query %s did not run on the modern engine", q.Name)
		}
	}
	testreport.Figures(t, "ClickHouse %s (chdb) against %s: %d migration steps (bootstrap, DDL, version records), %d pack runs of %d queries, equal", version, "18.16", len(steps)-len(cases)-2, len(cases), len(covered))
}

// engines reads engine_full of the tables of db, as Migrate does.
func (c *chdb) engines(t *testing.T, db string) map[string]string {
	t.Helper()
	res := c.query(t, "SELECT name, engine_full FROM system.tables WHERE database = "+quoteString(db))
	out := map[string]string{}
	for _, row := range res.Data {
		out[canonicalJSON(t, row[0], "String")] = canonicalJSON(t, row[1], "String")
	}
	return out
}

// countRows counts the rows of db.table, TTL applied first (OPTIMIZE FINAL
// runs the TTL merge that a server would run in the background).
func (c *chdb) countRows(t *testing.T, db, table string) uint64 {
	t.Helper()
	res, _ := c.run(t,
		chStep{SQL: fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", db, table)},
		chStep{SQL: fmt.Sprintf("SELECT count() FROM %s.%s", db, table), Format: "JSONCompact"})
	n, err := strconv.ParseUint(canonicalJSON(t, res[1].Data[0][0], "UInt64"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// On the 26.9 engine, the tables are created with the retention's TTL, and
// changing the setting changes the TTL (through the statements Migrate
// runs) so that rows older than the new retention go, while rows inside it
// stay; running the change again changes nothing.
func TestRetentionSettingChangesTTLOnModernEngine(t *testing.T) {
	ch := newChdb(t)
	const db = "hookline_retention"
	_, version := ch.run(t)
	f := chFlavor(t, version)
	ch.run(t, migrateSteps(f, db, Retention{Raw: 90 * day, Rollup: 400 * day})...)

	engines := ch.engines(t, db)
	for table, days := range map[string]string{TableAttempts: "90", TableRejected: "90", TableRollup: "400"} {
		if m := ttlDaysRE.FindStringSubmatch(engines[table]); m == nil || m[1] != days {
			t.Errorf("%s created with engine %q, want a TTL of %s days", table, engines[table], days)
		}
	}
	if changes := retentionChanges(f, db, Retention{Raw: 90 * day, Rollup: 400 * day}, engines); len(changes) != 0 {
		t.Errorf("retention as created, yet changes %q", changes)
	}

	now := time.Now().UTC().Truncate(time.Second)
	old := fixtureRow("ep-a", "t1", "e-60d", 1, "events", "delivered", "", 200, 10, now.Add(-60*day))
	recent := fixtureRow("ep-a", "t1", "e-10d", 1, "events", "delivered", "", 200, 10, now.Add(-10*day))
	ch.run(t, insertStep(t, db, []Row{old, recent}))
	if n := ch.countRows(t, db, TableAttempts); n != 2 {
		t.Fatalf("%d rows under a 90-day retention, want both (60 and 10 days old)", n)
	}

	thirty := Retention{Raw: 30 * day, Rollup: 30 * day}
	changes := retentionChanges(f, db, thirty, engines)
	if len(changes) != 3 {
		t.Fatalf("changes for 30 days: %q, want one per table", changes)
	}
	var steps []chStep
	for _, s := range changes {
		steps = append(steps, chStep{SQL: s})
	}
	ch.run(t, steps...)
	engines = ch.engines(t, db)
	for _, table := range []string{TableAttempts, TableRejected, TableRollup} {
		if m := ttlDaysRE.FindStringSubmatch(engines[table]); m == nil || m[1] != "30" {
			t.Errorf("%s after the change: engine %q, want a TTL of 30 days", table, engines[table])
		}
	}
	if again := retentionChanges(f, db, thirty, engines); len(again) != 0 {
		t.Errorf("the same retention again changes %q", again)
	}
	if n := ch.countRows(t, db, TableAttempts); n != 1 {
		t.Errorf("%d rows under a 30-day retention, want 1 (the 10-day-old one)", n)
	}
	if n := ch.countRows(t, db, TableRollup); n != 1 {
		t.Errorf("%d rollup rows under a 30-day retention, want 1", n)
	}
	// A zero field leaves that table's TTL alone.
	if got := retentionChanges(f, db, Retention{Raw: 45 * day}, engines); len(got) != 2 || strings.Contains(strings.Join(got, ";"), TableRollup+" ") {
		t.Errorf("raw retention only: changes %q, want attempts and rejected only", got)
	}
}
