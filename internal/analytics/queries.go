package analytics

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed queries/*.sql
var queryFS embed.FS

// Query is one query of the analyst pack (analytics/queries/NAME.sql). Its
// SQL uses ClickHouse's {name:Type} parameter syntax, so an analyst can run
// the file as is with clickhouse-client --param_name=value on servers that
// support it; hookline binds the values itself, which works on every server.
type Query struct {
	// Name is the file name without .sql.
	Name string
	// Title is a one-line summary; Answers says what the result means.
	Title   string
	Answers string
	// Core queries are the ones `hookline stats` and Summary run.
	Core bool
	// Params are the parameter names the SQL uses, in order of first use.
	Params []string
	// SQL is the file's full text, header comment included.
	SQL string
}

// Params are the values a query of the pack can use. Zero fields take
// defaults: the last hour up to now, database hookline, all endpoints and
// tenants, 20 rows where a query limits them.
type Params struct {
	Database string    // {db:Identifier}
	From     time.Time // {from:DateTime}, inclusive
	To       time.Time // {to:DateTime}, exclusive
	Endpoint string    // {endpoint:String}, "" for all
	Tenant   string    // {tenant:String}, "" for all
	Limit    uint32    // {limit:UInt32}
	Event    string    // {event:String}, an event id
}

// DefaultWindow is how far back queries look when Params.From is zero.
const DefaultWindow = time.Hour

// withDefaults fills zero fields. To defaults to a minute past now, so
// attempts of the current second are in the window despite small clock skew.
func (p Params) withDefaults(now time.Time) Params {
	if p.Database == "" {
		p.Database = DefaultDatabase
	}
	if p.To.IsZero() {
		p.To = now.Add(time.Minute)
	}
	if p.From.IsZero() {
		p.From = p.To.Add(-time.Minute - DefaultWindow)
	}
	if p.Limit == 0 {
		p.Limit = 20
	}
	return p
}

var paramRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_]+)\}`)

// paramTypes are the parameters the pack may use, with their types.
var paramTypes = map[string]string{
	"db":       "Identifier",
	"from":     "DateTime",
	"to":       "DateTime",
	"endpoint": "String",
	"tenant":   "String",
	"limit":    "UInt32",
	"event":    "String",
}

// literal renders a parameter as SQL.
func (p Params) literal(name string) (string, error) {
	switch name {
	case "db":
		if err := CheckDatabaseName(p.Database); err != nil {
			return "", err
		}
		return "`" + p.Database + "`", nil
	case "from":
		return fmt.Sprintf("toDateTime(%d)", p.From.Unix()), nil
	case "to":
		return fmt.Sprintf("toDateTime(%d)", p.To.Unix()), nil
	case "endpoint":
		return quoteString(p.Endpoint), nil
	case "tenant":
		return quoteString(p.Tenant), nil
	case "limit":
		return strconv.FormatUint(uint64(p.Limit), 10), nil
	case "event":
		return quoteString(p.Event), nil
	}
	return "", fmt.Errorf("unknown parameter %q", name)
}

// Bind returns the query's SQL with every {name:Type} replaced by its value.
func (q Query) Bind(p Params) (string, error) {
	var firstErr error
	out := paramRE.ReplaceAllStringFunc(q.SQL, func(m string) string {
		sub := paramRE.FindStringSubmatch(m)
		name, typ := sub[1], sub[2]
		want, ok := paramTypes[name]
		if !ok || want != typ {
			if firstErr == nil {
				firstErr = fmt.Errorf("query %s: parameter {%s:%s}: unknown name or type (have %v)", q.Name, name, typ, paramTypes)
			}
			return m
		}
		lit, err := p.literal(name)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("query %s: parameter %s: %w", q.Name, name, err)
		}
		return lit
	})
	return out, firstErr
}

// Queries returns the query pack, sorted by name.
func Queries() ([]Query, error) {
	entries, err := queryFS.ReadDir("queries")
	if err != nil {
		return nil, fmt.Errorf("read query pack: %w", err)
	}
	var qs []Query
	for _, e := range entries {
		b, err := queryFS.ReadFile("queries/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read query %s: %w", e.Name(), err)
		}
		q, err := parseQuery(strings.TrimSuffix(e.Name(), ".sql"), string(b))
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b Query) int { return strings.Compare(a.Name, b.Name) })
	return qs, nil
}

// LookupQuery returns the pack's query by name.
func LookupQuery(name string) (Query, error) {
	qs, err := Queries()
	if err != nil {
		return Query{}, err
	}
	for _, q := range qs {
		if q.Name == name {
			return q, nil
		}
	}
	return Query{}, fmt.Errorf("no query %q in the pack", name)
}

// parseQuery reads the header comment: "-- key: value" lines, where a
// value continues on following "--   " lines.
func parseQuery(name, text string) (Query, error) {
	q := Query{Name: name, SQL: text}
	fields := map[string]string{}
	var key string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "--") {
			break
		}
		body := strings.TrimPrefix(line, "--")
		if k, v, ok := strings.Cut(strings.TrimSpace(body), ":"); ok && !strings.HasPrefix(body, "   ") && !strings.Contains(k, " ") {
			key = k
			fields[key] = strings.TrimSpace(v)
			continue
		}
		if key != "" {
			fields[key] = strings.TrimSpace(fields[key] + "\n" + strings.TrimSpace(body))
		}
	}
	q.Title = fields["title"]
	q.Answers = strings.Join(strings.Fields(fields["answers"]), " ")
	q.Core = fields["core"] == "true"
	if q.Title == "" || q.Answers == "" || fields["params"] == "" {
		return Query{}, fmt.Errorf("query %s: header must have title, answers and params", name)
	}
	for _, m := range paramRE.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(q.Params, m[1]) {
			q.Params = append(q.Params, m[1])
		}
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(m[1]) + `\s+` + m[2] + `\b`).MatchString(fields["params"]) {
			return Query{}, fmt.Errorf("query %s: parameter {%s:%s} is not documented in the header", name, m[1], m[2])
		}
	}
	return q, nil
}

// Result is the outcome of one query: column names and rows of Go values
// (string, integers, float64, time.Time).
type Result struct {
	Query   Query
	Columns []string
	// Types are the columns' ClickHouse types, as the server names them.
	Types []string
	Rows  [][]any
}

// RunQuery binds p into q and runs it.
func RunQuery(ctx context.Context, conn driver.Conn, q Query, p Params) (Result, error) {
	p = p.withDefaults(time.Now())
	sql, err := q.Bind(p)
	if err != nil {
		return Result{}, err
	}
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return Result{}, fmt.Errorf("run query %s: %w", q.Name, err)
	}
	defer func() { _ = rows.Close() }()
	res := Result{Query: q, Columns: rows.Columns()}
	types := rows.ColumnTypes()
	for _, t := range types {
		res.Types = append(res.Types, t.DatabaseTypeName())
	}
	for rows.Next() {
		dest := make([]any, len(types))
		for i, t := range types {
			dest[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return Result{}, fmt.Errorf("read query %s: %w", q.Name, err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = reflect.ValueOf(d).Elem().Interface()
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return Result{}, fmt.Errorf("read query %s: %w", q.Name, err)
	}
	return res, nil
}

// RunCore runs the core queries of the pack, in name order.
func RunCore(ctx context.Context, conn driver.Conn, p Params) ([]Result, error) {
	qs, err := Queries()
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, q := range qs {
		if !q.Core {
			continue
		}
		r, err := RunQuery(ctx, conn, q, p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Column returns the values of the named column, or nil if there is none.
func (r Result) Column(name string) []any {
	i := slices.Index(r.Columns, name)
	if i < 0 {
		return nil
	}
	col := make([]any, len(r.Rows))
	for j, row := range r.Rows {
		col[j] = row[i]
	}
	return col
}

// formatValue renders a value for a text table.
func formatValue(v any) string {
	switch x := v.(type) {
	case time.Time:
		if x.Nanosecond() != 0 {
			return x.UTC().Format("2006-01-02 15:04:05.000")
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case float64:
		if math.IsNaN(x) {
			return "-"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return formatValue(float64(x))
	case string:
		if x == "" {
			return "(none)"
		}
		return x
	}
	return fmt.Sprint(v)
}

// WriteText prints the result as an aligned table under its title.
func (r Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "== %s (%s)\n", r.Query.Title, r.Query.Name)
	if len(r.Rows) == 0 {
		fmt.Fprintln(tw, "(no rows)")
		fmt.Fprintln(tw)
		return tw.Flush()
	}
	fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = formatValue(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// jsonValue makes a value JSON-safe: NaN and infinities become null,
// times RFC 3339 in UTC.
func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		return jsonValue(float64(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// MarshalJSON encodes the result as {"query", "title", "columns", "rows"},
// each row an object keyed by column name.
func (r Result) MarshalJSON() ([]byte, error) {
	rows := make([]map[string]any, len(r.Rows))
	for i, row := range r.Rows {
		m := make(map[string]any, len(row))
		for j, v := range row {
			m[r.Columns[j]] = jsonValue(v)
		}
		rows[i] = m
	}
	return json.Marshal(struct {
		Query   string           `json:"query"`
		Title   string           `json:"title"`
		Columns []string         `json:"columns"`
		Rows    []map[string]any `json:"rows"`
	}{r.Query.Name, r.Query.Title, r.Columns, rows})
}

// CountByOutcome counts the attempt rows per outcome after deduplication
// (FINAL), the number to compare with what the pipeline made.
func CountByOutcome(ctx context.Context, conn driver.Conn, database string) (map[string]uint64, error) {
	return countByOutcome(ctx, conn, database, "")
}

// CountTenantByOutcome is CountByOutcome over the rows of one tenant: what
// one demo run, whose endpoints share a tenant of the run's own, wrote.
func CountTenantByOutcome(ctx context.Context, conn driver.Conn, database, tenant string) (map[string]uint64, error) {
	return countByOutcome(ctx, conn, database, "WHERE tenant = "+quoteString(tenant))
}

func countByOutcome(ctx context.Context, conn driver.Conn, database, where string) (map[string]uint64, error) {
	if err := CheckDatabaseName(database); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT outcome, count() FROM %s.%s FINAL %s GROUP BY outcome", database, TableAttempts, where))
	if err != nil {
		return nil, fmt.Errorf("count attempts by outcome: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]uint64{}
	for rows.Next() {
		var o string
		var n uint64
		if err := rows.Scan(&o, &n); err != nil {
			return nil, fmt.Errorf("count attempts by outcome: %w", err)
		}
		out[o] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count attempts by outcome: %w", err)
	}
	return out, nil
}

// Summary runs the core queries over the last 24 hours and returns them as
// readable tables, preceded by the attempt rows per outcome.
func Summary(ctx context.Context, conn driver.Conn, database string) (string, error) {
	counts, err := CountByOutcome(ctx, conn, database)
	if err != nil {
		return "", err
	}
	return summary(ctx, conn, database, counts, "", "")
}

// TenantSummary is Summary over the rows of one tenant.
func TenantSummary(ctx context.Context, conn driver.Conn, database, tenant string) (string, error) {
	counts, err := CountTenantByOutcome(ctx, conn, database, tenant)
	if err != nil {
		return "", err
	}
	return summary(ctx, conn, database, counts, tenant, ", tenant "+tenant)
}

func summary(ctx context.Context, conn driver.Conn, database string, counts map[string]uint64, tenant, scope string) (string, error) {
	var b strings.Builder
	outcomes := make([]string, 0, len(counts))
	for o := range counts {
		outcomes = append(outcomes, o)
	}
	slices.Sort(outcomes)
	fmt.Fprintf(&b, "attempt rows in clickhouse (%s.%s%s, deduplicated):", database, TableAttempts, scope)
	for _, o := range outcomes {
		fmt.Fprintf(&b, " %s=%d", o, counts[o])
	}
	b.WriteString("\n\n")
	now := time.Now()
	results, err := RunCore(ctx, conn, Params{Database: database, Tenant: tenant, From: now.Add(-24 * time.Hour), To: now.Add(time.Minute)})
	if err != nil {
		return "", err
	}
	for _, r := range results {
		if err := r.WriteText(&b); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
