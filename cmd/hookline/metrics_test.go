package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
)

var (
	servedOnce  sync.Once
	served      map[string]bool
	servedFull  bool
	servedError error
)

// servedMetrics starts a service wired the way runServe wires it (main's
// registry, the ClickHouse sink and the outbox relay when their services
// are at hand) and returns the name of every metric it registers. full
// says whether the sink and the relay were part of it.
func servedMetrics(t *testing.T) (map[string]bool, bool) {
	t.Helper()
	servedOnce.Do(func() { served, servedFull, servedError = startAndDescribe() })
	if servedError != nil {
		t.Fatal(servedError)
	}
	return served, servedFull
}

func startAndDescribe() (map[string]bool, bool, error) {
	dir, err := os.MkdirTemp("", "hookline-metrics-")
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfg := config.Default()
	cfg.KafkaListen, cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Partitions = 2
	cfg.ShutdownGrace = 5 * time.Second
	cfg.ClickHouse = os.Getenv("HOOKLINE_TEST_CLICKHOUSE")
	cfg.ClickHouseDatabase = "hookline_metrics_test"
	cfg.OutboxPostgres = os.Getenv("HOOKLINE_TEST_POSTGRES")
	cfg.OutboxTable = "hookline_metrics_test_outbox"
	full := cfg.ClickHouse != "" && cfg.OutboxPostgres != ""
	if !full && (os.Getenv("HOOKLINE_REQUIRE_CLICKHOUSE") == "1" || os.Getenv("HOOKLINE_REQUIRE_POSTGRES") == "1") {
		return nil, false, fmt.Errorf("HOOKLINE_REQUIRE_CLICKHOUSE/POSTGRES set but HOOKLINE_TEST_CLICKHOUSE=%q HOOKLINE_TEST_POSTGRES=%q", cfg.ClickHouse, cfg.OutboxPostgres)
	}
	reg := newPromRegistry()
	svc, err := app.NewService(app.Options{
		Config: cfg, Logger: slog.New(slog.DiscardHandler), Registry: reg,
		Extra: append(app.AnalyticsExtras(cfg), outboxExtras(cfg)...),
	})
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = svc.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	select {
	case <-svc.Ready():
	case <-stopped:
		return nil, false, fmt.Errorf("service stopped before ready: %w", runErr)
	case <-time.After(60 * time.Second):
		return nil, false, fmt.Errorf("service not ready within 60s")
	}
	// The sink registers its metrics once connected, the relay once
	// created; both run beside the pipeline. The DLQ backlog's appear
	// after its first read.
	want := []string{"hookline_dlq_waiting_records"}
	if full {
		want = append(want, "hookline_sink_lag_seconds", "hookline_outbox_active")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		names := describe(reg)
		missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return names[n] })
		if len(missing) == 0 {
			return names, full, nil
		}
		if time.Now().After(deadline) {
			return nil, false, fmt.Errorf("serve registered no %v within 60s", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describe returns the names of every metric reg's collectors describe,
// including vectors that have no series yet. The backlog collector
// describes its metrics always, so describe also gathers: what is
// exported is what a scrape can show.
func describe(reg *prometheus.Registry) map[string]bool {
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = false
		}
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	// A described but not yet gathered vector counts as exported too.
	for n := range names {
		names[n] = true
	}
	return names
}

var documentedRow = regexp.MustCompile("(?m)^\\| `([a-z_:]+)` \\|")

func documentedMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range documentedRow.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// Every metric serve exports has its row in docs/metrics.md, and every
// row names a metric serve exports (with ClickHouse and PostgreSQL
// configured, for the sink's and the relay's).
func TestEveryExportedMetricIsDocumented(t *testing.T) {
	names, full := servedMetrics(t)
	documented := documentedMetrics(t)
	for n := range names {
		if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			continue // client_golang's standard collectors, documented as such
		}
		if !slices.Contains(documented, n) {
			t.Errorf("serve exports %s, which docs/metrics.md does not document", n)
		}
	}
	for _, n := range documented {
		optional := strings.HasPrefix(n, "hookline_sink_") || strings.HasPrefix(n, "hookline_outbox_")
		if !names[n] && (full || !optional) {
			t.Errorf("docs/metrics.md documents %s, which serve does not export", n)
		}
	}
}

// metricNames returns the metrics a PromQL expression reads. A histogram's
// _bucket, _sum and _count series count as the histogram.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	// Grafana's interval variables are not PromQL.
	expr = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m").Replace(expr)
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("parse %q: %v", expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			out = append(out, name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%q reads no metric", expr)
	}
	return out
}

func exported(names map[string]bool, n string) bool {
	if names[n] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(n, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// grafanaPanel is what the test reads of a dashboard panel.
type grafanaPanel struct {
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // a row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// Every query of the Grafana dashboard parses and reads only metrics a
// running serve exports: a renamed metric fails here, not on a blank panel.
func TestDashboardQueriesReadExportedMetrics(t *testing.T) {
	names, _ := servedMetrics(t)
	b, err := os.ReadFile("../../deploy/grafana/hookline.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/hookline.json: %v", err)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type string }) bool { return v.Type == "datasource" }) {
		t.Error("the dashboard has no datasource variable")
	}
	queries := 0
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				queries++
				for _, n := range metricNames(t, tg.Expr) {
					if !exported(names, n) {
						t.Errorf("panel %q reads %s, which serve does not export", p.Title, n)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// Every alert rule parses, reads only metrics serve exports, and has its
// summary, description and a runbook_url whose section docs/runbook.md has.
func TestAlertRulesReadExportedMetricsAndHaveARunbookSection(t *testing.T) {
	names, full := servedMetrics(t)
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules++
			for _, n := range metricNames(t, r.Expr) {
				if strings.HasPrefix(n, "hookline_sink_") && !full {
					continue // serve exports them only with ClickHouse configured
				}
				if !exported(names, n) {
					t.Errorf("alert %s reads %s, which serve does not export", r.Alert, n)
				}
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("alert %s has no %s", r.Alert, k)
				}
			}
			_, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "docs/runbook.md#")
			if anchor != strings.ToLower(r.Alert) || !strings.Contains(string(runbook), "\n### "+r.Alert+"\n") {
				t.Errorf("alert %s: runbook_url %q does not point at its section ### %s of docs/runbook.md", r.Alert, r.Annotations["runbook_url"], r.Alert)
			}
		}
	}
	if rules == 0 {
		t.Fatal("no alert rules")
	}
}
