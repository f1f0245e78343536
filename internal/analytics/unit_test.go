package analytics

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQueryPackHeaders(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 7 {
		t.Fatalf("query pack has %d queries, want at least 7", len(qs))
	}
	core := 0
	for _, q := range qs {
		t.Run(q.Name, func(t *testing.T) {
			if q.Title == "" || q.Answers == "" {
				t.Errorf("title %q answers %q: both must be set", q.Title, q.Answers)
			}
			if !slices.Contains(q.Params, "db") {
				t.Errorf("params %v: the database must be a parameter", q.Params)
			}
			sql, err := q.Bind(Params{Database: "hl", From: time.Unix(1000, 0), To: time.Unix(2000, 0), Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(sql, "{") {
				t.Errorf("bound SQL still has a placeholder:\n%s", sql)
			}
			if !strings.Contains(sql, "`hl`.") {
				t.Errorf("bound SQL does not name the database:\n%s", sql)
			}
		})
		if q.Core {
			core++
		}
	}
	if core == 0 {
		t.Error("no core query")
	}
}

func TestBind(t *testing.T) {
	q := Query{Name: "t", SQL: "SELECT * FROM {db:Identifier}.attempts WHERE endpoint_id = {endpoint:String} AND started_at >= {from:DateTime} LIMIT {limit:UInt32}"}
	tests := []struct {
		name    string
		p       Params
		want    string
		wantErr string
	}{
		{
			name: "values",
			p:    Params{Database: "hookline", Endpoint: "ep-1", From: time.Unix(1700000000, 0), Limit: 3},
			want: "SELECT * FROM `hookline`.attempts WHERE endpoint_id = 'ep-1' AND started_at >= toDateTime(1700000000) LIMIT 3",
		},
		{
			name: "quotes are escaped",
			p:    Params{Database: "hookline", Endpoint: `a'b\c`, From: time.Unix(0, 0), Limit: 1},
			want: `SELECT * FROM ` + "`hookline`" + `.attempts WHERE endpoint_id = 'a\'b\\c' AND started_at >= toDateTime(0) LIMIT 1`,
		},
		{
			name:    "database must be an identifier",
			p:       Params{Database: "x; DROP TABLE y"},
			wantErr: "database name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.Bind(tt.p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	bad := Query{Name: "bad", SQL: "SELECT {endpoint:UInt32}, {nope:String}"}
	if _, err := bad.Bind(Params{}); err == nil {
		t.Error("binding a parameter of the wrong type or unknown name succeeded")
	}
}

func TestParseQueryRejectsUndocumentedParams(t *testing.T) {
	text := "-- title: x\n-- answers: y\n-- params:\n--   db Identifier  the database\n-- core: true\nSELECT 1 FROM {db:Identifier}.t WHERE a = {tenant:String}\n"
	if _, err := parseQuery("x", text); err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Fatalf("err = %v, want an undocumented-parameter error naming tenant", err)
	}
}

func TestSchemaFlavors(t *testing.T) {
	tests := []struct {
		flavor  Flavor
		want    []string
		notWant []string
	}{
		{Flavor{18, 16}, []string{"started_at DateTime,", "tier String", "ReplacingMergeTree", "AggregatingMergeTree", "uniqExactState(attempt_id)"},
			[]string{"DateTime64", "LowCardinality", "CODEC", "TTL"}},
		{Flavor{24, 8}, []string{"started_at DateTime64(3)", "tier LowCardinality(String)", "CODEC(ZSTD(1))", "TTL toDateTime(started_at) + INTERVAL 90 DAY", "TTL toDateTime(minute) + INTERVAL 400 DAY"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.flavor.String(), func(t *testing.T) {
			var all []string
			for _, m := range migrations {
				all = append(all, m.statements(tt.flavor, "hl", DefaultRetention)...)
			}
			ddl := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(ddl, w) {
					t.Errorf("DDL lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(ddl, w) {
					t.Errorf("DDL has %q, which this server does not support", w)
				}
			}
		})
	}
}

func TestSinkConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SinkConfig
		want string
	}{
		{"no brokers", SinkConfig{}, "Brokers"},
		{"no conn", SinkConfig{Brokers: []string{"x:9092"}}, "Conn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.withDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestResultJSONHandlesNaN(t *testing.T) {
	r := Result{Query: Query{Name: "q", Title: "Q"}, Columns: []string{"a", "p95_ms", "at"},
		Rows: [][]any{{"x", math.NaN(), time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"query":"q","title":"Q","columns":["a","p95_ms","at"],"rows":[{"a":"x","at":"2024-03-01T10:00:00Z","p95_ms":null}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
