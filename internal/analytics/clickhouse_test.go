package analytics

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/processors"
)

func TestMigrateIdempotent(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx := t.Context()

	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	rows := []Row{fixtureRow("ep-1", "t1", "e-1", 1, "events", processors.OutcomeDelivered, "", 200, 12, t0)}
	if err := InsertRows(ctx, conn, db, rows); err != nil {
		t.Fatal(err)
	}
	// Again, and twice at once, as two serve processes starting together would.
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(ctx, conn, db) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}

	applied, err := AppliedVersions(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		if !applied[m.version] {
			t.Errorf("version %d not recorded", m.version)
		}
	}
	for _, table := range []string{TableAttempts, TableRejected, TableRollup, ViewRollup, TableMigrations} {
		n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'", db, table))
		if err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v", table, n, err)
		}
	}
	// The row written before the re-runs is still there, once, in the raw
	// table and in the rollup (the backfill re-ran at most on fresh
	// versions, and counts by attempt id).
	if n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT count() FROM %s.attempts FINAL", db)); err != nil || n != 1 {
		t.Errorf("attempts after re-migrate: %d, %v; want 1", n, err)
	}
	if n, err := queryUint64(ctx, conn, fmt.Sprintf("SELECT uniqExactMerge(attempts) FROM %s.attempts_1m", db)); err != nil || n != 1 {
		t.Errorf("rollup attempts after re-migrate: %d, %v; want 1", n, err)
	}
}

// fixtureRow builds one attempt: started at at, finished a second later.
func fixtureRow(endpoint, tenant, event string, attempt int, tier string, outcome processors.Outcome, class processors.ErrorClass, status int, latency float64, at time.Time) Row {
	next := ""
	switch outcome {
	case processors.OutcomeRetry:
		next = map[string]string{"events": "retry.30s", "retry.30s": "retry.2m", "retry.2m": "retry.10m"}[tier]
	case processors.OutcomeDeadLettered:
		next = "dlq"
	}
	return Row{
		Attempt: processors.Attempt{
			V:          processors.AttemptVersion,
			AttemptID:  fmt.Sprintf("%s/%s/%d", endpoint, event, attempt),
			EventID:    event,
			EndpointID: endpoint,
			Tenant:     tenant,
			EventType:  "order.created",
			Attempt:    attempt,
			Tier:       tier,
			Outcome:    outcome,
			StatusCode: status,
			ErrorClass: class,
			LatencyMS:  latency,
			NextTier:   next,
			StartedAt:  at,
			FinishedAt: at.Add(time.Second),
		},
		KafkaTopic: "attempts",
	}
}

// t0 is 10:00 UTC yesterday: recent enough that TTL retention on current
// servers keeps the rows. Expected times below write its day as "D".
var t0 = time.Now().UTC().Truncate(24 * time.Hour).Add(-24*time.Hour + 10*time.Hour)

func at(min, sec int) time.Time {
	return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// fixture is the fixed data set of the query-pack test (docs/analytics.md
// walks through the same shape):
//
//	ep-a (t1) healthy: 10 first-try deliveries at 10:00, latencies 10..100 ms
//	ep-b (t1) failing since 10:10 after a delivery at 10:05; e-b1 dead-letters at 10:12
//	ep-c (t2) recovered: 429 at 10:20, delivered from retry.30s at 10:21:01
//	ep-d (t2) dead: connection errors, an open circuit and a 410, since 10:30
//	ep-e (no tenant) one delivery at 11:05
//	plus, before the window (the day before the last hour, for
//	success_rate_drop): deliveries of ep-a at 8:00, ep-b at 8:30, ep-d at
//	8:40 and ep-c at 8:50, and an ep-c dead letter (410) at 8:55
func fixture() []Row {
	var rows []Row
	for i := range 10 {
		rows = append(rows, fixtureRow("ep-a", "t1", fmt.Sprintf("e-a%d", i), 1, "events", processors.OutcomeDelivered, processors.ClassNone, 200, float64(10*(i+1)), at(0, i)))
	}
	retry, dlq, ok := processors.OutcomeRetry, processors.OutcomeDeadLettered, processors.OutcomeDelivered
	rows = append(rows,
		fixtureRow("ep-b", "t1", "e-b0", 1, "events", ok, processors.ClassNone, 200, 20, at(5, 0)),
		fixtureRow("ep-b", "t1", "e-b1", 1, "events", retry, processors.ClassHTTP5xx, 503, 100, at(10, 0)),
		fixtureRow("ep-b", "t1", "e-b2", 1, "events", retry, processors.ClassTimeout, 0, 5000, at(10, 30)),
		fixtureRow("ep-b", "t1", "e-b1", 2, "retry.30s", retry, processors.ClassHTTP5xx, 503, 120, at(11, 0)),
		fixtureRow("ep-b", "t1", "e-b1", 3, "retry.2m", dlq, processors.ClassHTTP5xx, 500, 130, at(12, 0)),
		fixtureRow("ep-c", "t2", "e-c1", 1, "events", retry, processors.ClassHTTP429, 429, 40, at(20, 0)),
		fixtureRow("ep-c", "t2", "e-c1", 2, "retry.30s", ok, processors.ClassNone, 200, 60, at(21, 1)),
		fixtureRow("ep-d", "t2", "e-d1", 1, "events", retry, processors.ClassConnection, 0, 3, at(30, 0)),
		fixtureRow("ep-d", "t2", "e-d1", 2, "retry.30s", dlq, processors.ClassCircuitOpen, 0, 0, at(31, 0)),
		fixtureRow("ep-d", "t2", "e-d3", 1, "events", retry, processors.ClassConnection, 0, 3, at(35, 0)),
		fixtureRow("ep-d", "t2", "e-d2", 1, "events", dlq, processors.ClassHTTP410, 410, 25, at(40, 0)),
		fixtureRow("ep-e", "", "e-e1", 1, "events", ok, processors.ClassNone, 200, 50, at(65, 0)),
		fixtureRow("ep-a", "t1", "e-old", 1, "events", ok, processors.ClassNone, 200, 10, at(-120, 0)),
		fixtureRow("ep-b", "t1", "e-b-old", 1, "events", ok, processors.ClassNone, 200, 10, at(-90, 0)),
		fixtureRow("ep-d", "t2", "e-d-old", 1, "events", ok, processors.ClassNone, 200, 10, at(-80, 0)),
		fixtureRow("ep-c", "t2", "e-c-old1", 1, "events", ok, processors.ClassNone, 200, 10, at(-70, 0)),
		fixtureRow("ep-c", "t2", "e-c-old2", 1, "events", dlq, processors.ClassHTTP410, 410, 10, at(-65, 0)),
	)
	for i := range rows {
		a := &rows[i].Attempt
		a.FirstAttempt = a.StartedAt
		a.Skipped = a.ErrorClass == processors.ClassCircuitOpen
	}
	// e-c1 and e-b1 were first attempted at their attempt 1.
	for i := range rows {
		switch rows[i].EventID {
		case "e-c1":
			rows[i].FirstAttempt = at(20, 0)
		case "e-b1":
			rows[i].FirstAttempt = at(10, 0)
		case "e-d1":
			rows[i].FirstAttempt = at(30, 0)
		}
	}
	return rows
}

// render formats the named columns of every row as "a|b|c".
func render(r Result, cols ...string) []string {
	var out []string
	for _, row := range r.Rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			j := slices.Index(r.Columns, c)
			if j < 0 {
				cells[i] = "<no column " + c + ">"
				continue
			}
			cells[i] = formatValue(row[j])
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

// packCase is one run of a pack query on the fixture: its parameters, and
// the values expected in the named columns ("D " is t0's day).
type packCase struct {
	query string
	name  string
	p     Params
	cols  []string
	want  []string
	check func(t *testing.T, r Result)
}

// packCases are the runs of TestQueryPack, every query at least once; the
// modern-engine test runs the same ones.
func packCases(db string) []packCase {
	window := Params{Database: db, From: t0.Add(-time.Hour), To: t0.Add(2 * time.Hour)}
	with := func(f func(*Params)) Params { p := window; f(&p); return p }

	return []packCase{
		{
			query: "success_latency_minute", name: "all",
			p:    window,
			cols: []string{"minute", "endpoint_id", "total", "delivered", "failed", "success_pct"},
			want: []string{
				"D 10:00:00|ep-a|10|10|0|100",
				"D 10:05:00|ep-b|1|1|0|100",
				"D 10:10:00|ep-b|2|0|2|0",
				"D 10:11:00|ep-b|1|0|1|0",
				"D 10:12:00|ep-b|1|0|1|0",
				"D 10:20:00|ep-c|1|0|1|0",
				"D 10:21:00|ep-c|1|1|0|100",
				"D 10:30:00|ep-d|1|0|1|0",
				"D 10:31:00|ep-d|1|0|1|0",
				"D 10:35:00|ep-d|1|0|1|0",
				"D 10:40:00|ep-d|1|0|1|0",
				"D 11:05:00|ep-e|1|1|0|100",
			},
			check: func(t *testing.T, r Result) {
				// ep-a at 10:00: latencies 10, 20, ... 100 ms.
				p50, p95, p99 := r.Rows[0][6].(float64), r.Rows[0][7].(float64), r.Rows[0][8].(float64)
				if p50 < 40 || p50 > 70 || p95 < 85 || p95 > 100 || p99 < 90 || p99 > 100 || p95 > p99 {
					t.Errorf("ep-a latency p50 %v p95 %v p99 %v; want about 55, 95, 100", p50, p95, p99)
				}
				// ep-d at 10:31 only had a skipped attempt: no latency.
				if p95 := r.Rows[8][7].(float64); !math.IsNaN(p95) {
					t.Errorf("skipped-only minute has p95 %v, want none (NaN)", p95)
				}
			},
		},
		{
			query: "success_latency_minute", name: "one endpoint",
			p:    with(func(p *Params) { p.Endpoint = "ep-c" }),
			cols: []string{"minute", "endpoint_id", "total", "delivered"},
			want: []string{"D 10:20:00|ep-c|1|0", "D 10:21:00|ep-c|1|1"},
		},
		{
			query: "success_latency_hour", name: "all",
			p:    window,
			cols: []string{"hour", "endpoint_id", "total", "delivered", "failed", "success_pct"},
			want: []string{
				"D 10:00:00|ep-a|10|10|0|100",
				"D 10:00:00|ep-b|5|1|4|20",
				"D 10:00:00|ep-c|2|1|1|50",
				"D 10:00:00|ep-d|4|0|4|0",
				"D 11:00:00|ep-e|1|1|0|100",
			},
			check: func(t *testing.T, r Result) {
				// ep-b's hour: 20, 100, 120, 130 and 5000 ms; p99 is the timeout.
				if p99 := r.Rows[1][8].(float64); p99 < 1000 {
					t.Errorf("ep-b p99 %v, want the 5000 ms timeout to dominate", p99)
				}
			},
		},
		{
			query: "success_latency_hour", name: "one tenant",
			p:    with(func(p *Params) { p.Tenant = "t2" }),
			cols: []string{"endpoint_id", "total", "delivered"},
			want: []string{"ep-c|2|1", "ep-d|4|0"},
		},
		{
			query: "retries_by_tier", name: "all",
			p:    window,
			cols: []string{"tier", "total", "delivered", "retried", "dead_lettered", "success_pct"},
			want: []string{
				"events|18|12|5|1|66.67",
				"retry.30s|3|1|1|1|33.33",
				"retry.2m|1|0|0|1|0",
			},
		},
		{
			query: "failing_endpoints", name: "all",
			p:    window,
			cols: []string{"endpoint_id", "tenant", "failing_since", "last_attempt", "failed_attempts", "events", "last_error_class", "last_status"},
			want: []string{
				"ep-b|t1|D 10:10:00|D 10:12:00|4|2|http_5xx|500",
				"ep-d|t2|D 10:30:00|D 10:40:00|4|3|http_410|410",
			},
		},
		{
			query: "failing_endpoints", name: "one tenant",
			p:    with(func(p *Params) { p.Tenant = "t1" }),
			cols: []string{"endpoint_id", "failing_since"},
			want: []string{"ep-b|D 10:10:00"},
		},
		{
			query: "dlq_by_error_class", name: "all",
			p:    window,
			cols: []string{"error_class", "dlq_arrivals", "endpoints", "tenants", "first_arrival", "last_arrival"},
			want: []string{
				"circuit_open|1|1|1|D 10:31:01|D 10:31:01",
				"http_410|1|1|1|D 10:40:01|D 10:40:01",
				"http_5xx|1|1|1|D 10:12:01|D 10:12:01",
			},
		},
		{
			query: "dlq_by_error_class", name: "one endpoint",
			p:    with(func(p *Params) { p.Endpoint = "ep-d" }),
			cols: []string{"error_class", "dlq_arrivals"},
			want: []string{"circuit_open|1", "http_410|1"},
		},
		{
			query: "time_to_delivery", name: "all",
			p:    window,
			cols: []string{"endpoint_id", "delivered", "first_try_pct", "avg_attempts", "p50_s", "p95_s", "max_s"},
			want: []string{
				"ep-c|1|0|2|62|62|62",
				"ep-a|10|100|1|1|1|1",
				"ep-b|1|100|1|1|1|1",
				"ep-e|1|100|1|1|1|1",
			},
		},
		{
			query: "top_failing_tenants", name: "all",
			p:    window,
			cols: []string{"tenant", "failed", "total", "failure_pct", "failing_endpoints", "top_error_class"},
			want: []string{
				"t2|5|6|83.33|2|connection",
				"t1|4|15|26.67|1|http_5xx",
			},
		},
		{
			query: "top_failing_tenants", name: "limit",
			p:    with(func(p *Params) { p.Limit = 1 }),
			cols: []string{"tenant", "failed"},
			want: []string{"t2|5"},
		},
		{
			// e-b2 and e-d3 still wait in retry.30s at the end.
			query: "retry_queue_depth", name: "all",
			p:    window,
			cols: []string{"tier", "minute", "entered", "taken", "depth"},
			want: []string{
				"retry.2m|D 10:11:00|1|0|1",
				"retry.2m|D 10:12:00|0|1|0",
				"retry.30s|D 10:10:00|2|0|2",
				"retry.30s|D 10:11:00|0|1|1",
				"retry.30s|D 10:20:00|1|0|2",
				"retry.30s|D 10:21:00|0|1|1",
				"retry.30s|D 10:30:00|1|0|2",
				"retry.30s|D 10:31:00|0|1|1",
				"retry.30s|D 10:35:00|1|0|2",
			},
		},
		{
			// The depth counts what entered before the window: from 10:30
			// on, e-b2 (10:10) is still in it.
			query: "retry_queue_depth", name: "window starts later",
			p:    with(func(p *Params) { p.From = at(30, 0) }),
			cols: []string{"tier", "minute", "entered", "taken", "depth"},
			want: []string{
				"retry.30s|D 10:30:00|1|0|2",
				"retry.30s|D 10:31:00|0|1|1",
				"retry.30s|D 10:35:00|1|0|2",
			},
		},
		{
			query: "failure_rate_by_endpoint", name: "all",
			p:    window,
			cols: []string{"endpoint_id", "endpoint_tenant", "total", "failed", "failure_pct", "dead_lettered"},
			want: []string{
				"ep-d|t2|4|4|100|2",
				"ep-b|t1|5|4|80|1",
				"ep-c|t2|2|1|50|0",
				"ep-a|t1|10|0|0|0",
				"ep-e|(none)|1|0|0|0",
			},
		},
		{
			query: "failure_rate_by_endpoint", name: "limit",
			p:    with(func(p *Params) { p.Limit = 2 }),
			cols: []string{"endpoint_id"},
			want: []string{"ep-d", "ep-b"},
		},
		{
			// 10:00: 11 first-try deliveries of 1 s, and e-c1 after 62 s.
			query: "time_to_delivery_hour", name: "all",
			p:    window,
			cols: []string{"hour", "delivered", "first_try_pct", "p50_s", "p95_s", "max_s"},
			want: []string{
				"D 10:00:00|12|91.67|1|62|62",
				"D 11:00:00|1|100|1|1|1",
			},
		},
		{
			query: "dlq_inflow_hour", name: "all",
			p:    window,
			cols: []string{"hour", "dlq_arrivals", "endpoints", "tenants"},
			want: []string{"D 10:00:00|3|2|2"},
		},
		{
			query: "dlq_inflow_hour", name: "the day before",
			p:    with(func(p *Params) { p.From = t0.Add(-24 * time.Hour) }),
			cols: []string{"hour", "dlq_arrivals", "endpoints", "tenants"},
			want: []string{"D 08:00:00|1|1|1", "D 10:00:00|3|2|2"},
		},
		{
			// The last hour is 10:00-11:00. ep-c is at 50% in both, ep-a
			// at 100%; ep-e had nothing the day before.
			query: "success_rate_drop", name: "all",
			p:    with(func(p *Params) { p.To = at(60, 0) }),
			cols: []string{"endpoint_id", "endpoint_tenant", "last_hour_total", "last_hour_delivered", "day_before_total", "day_before_delivered", "last_hour_success_pct", "day_before_success_pct", "drop_pct_points"},
			want: []string{
				"ep-d|t2|4|0|1|1|0|100|100",
				"ep-b|t1|5|1|1|1|20|100|80",
			},
		},
		{
			query: "event_history", name: "retried, then dead-lettered",
			p:    with(func(p *Params) { p.Event = "e-b1" }),
			cols: []string{"endpoint_id", "attempt", "tier", "outcome", "skipped", "status_code", "error_class", "latency_ms", "started_at", "finished_at", "next_tier"},
			want: []string{
				"ep-b|1|events|retry|0|503|http_5xx|100|D 10:10:00|D 10:10:01|retry.30s",
				"ep-b|2|retry.30s|retry|0|503|http_5xx|120|D 10:11:00|D 10:11:01|retry.2m",
				"ep-b|3|retry.2m|dead_lettered|0|500|http_5xx|130|D 10:12:00|D 10:12:01|dlq",
			},
		},
		{
			query: "event_history", name: "skipped attempt",
			p:    with(func(p *Params) { p.Event = "e-d1" }),
			cols: []string{"attempt", "tier", "outcome", "skipped", "status_code", "error_class", "latency_ms"},
			want: []string{
				"1|events|retry|0|0|connection|3",
				"2|retry.30s|dead_lettered|1|0|circuit_open|0",
			},
		},
		{
			query: "event_history", name: "unknown event",
			p:    with(func(p *Params) { p.Event = "e-none" }),
			cols: []string{"attempt"},
			want: nil,
		},
	}
}

func TestQueryPack(t *testing.T) {
	conn := testConn(t)
	db := testDatabase(t, conn)
	ctx := t.Context()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	// The data set goes in twice, as a replayed batch would: every
	// number below must come out as if it went in once.
	for range 2 {
		if err := InsertRows(ctx, conn, db, fixture()); err != nil {
			t.Fatal(err)
		}
	}
	tests := packCases(db)
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.query] = true
		t.Run(tt.query+"/"+tt.name, func(t *testing.T) {
			q, err := LookupQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			r, err := RunQuery(ctx, conn, q, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got := render(r, tt.cols...)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "D ", t0.Format("2006-01-02 "))
			}
			if !slices.Equal(got, want) {
				t.Errorf("rows:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			if tt.check != nil && len(got) == len(tt.want) {
				tt.check(t, r)
			}
		})
	}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !covered[q.Name] {
			t.Errorf("query %s has no expected values in this test", q.Name)
		}
	}

	t.Run("event history API", func(t *testing.T) {
		got, err := EventHistory(ctx, conn, db, "e-c1", t0.Add(-time.Hour), t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []EventAttempt{
			{EndpointID: "ep-c", Attempt: 1, Tier: "events", Outcome: "retry", StatusCode: 429, ErrorClass: "http_429", LatencyMS: 40, StartedAt: at(20, 0), FinishedAt: at(20, 1), NextTier: "retry.30s"},
			{EndpointID: "ep-c", Attempt: 2, Tier: "retry.30s", Outcome: "delivered", StatusCode: 200, LatencyMS: 60, StartedAt: at(21, 1), FinishedAt: at(21, 2)},
		}
		if !slices.Equal(got, want) {
			t.Errorf("history of e-c1:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("summary", func(t *testing.T) {
		s, err := Summary(ctx, conn, db)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, "delivered=17") || !strings.Contains(s, "dead_lettered=4") || !strings.Contains(s, "retry=6") {
			t.Errorf("summary lacks the deduplicated counts per outcome:\n%s", s)
		}
	})
}
