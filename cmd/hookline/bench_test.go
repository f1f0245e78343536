package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Every scenario but scale (which needs a real Kafka) runs at a tiny size,
// in one --scenario all, and prints one JSON object with its figures.
// Speed is not asserted: it lives in the bench, not in tests.
func TestBenchScenariosPrintTheirFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline once per scenario")
	}
	// positive are fields that must be numbers above zero, present are
	// fields that must be there.
	type fields struct {
		scenario          string
		positive, present []string
	}
	tests := []fields{
		{"e2e", []string{"events", "keys", "partitions", "concurrency", "pipeline_deliveries_per_second", "raw_http_posts_per_second", "ratio", "gomaxprocs", "peak_rss_bytes"}, nil},
		{"keys", []string{"pipeline_deliveries_per_second", "raw_http_posts_per_second", "ratio", "peak_rss_bytes"}, nil},
		{"ingest", []string{"single_accepted_per_second", "single_end_to_end_per_second", "single_request_ms_p50", "single_request_ms_p99",
			"batch_accepted_per_second", "batch_end_to_end_per_second", "direct_produce_end_to_end_per_second",
			"raw_http_posts_per_second", "single_ratio", "batch_ratio", "direct_produce_ratio", "batch_vs_direct_produce", "event_bytes", "peak_rss_bytes"},
			[]string{"single_cpu_seconds", "batch_cpu_seconds", "direct_produce_cpu_seconds"}},
		{"tiers", []string{"events", "tier_attempts_measured", "peak_records_waiting_in_tiers", "lateness_ms_max", "peak_rss_bytes"},
			[]string{"lateness_ms_p50", "lateness_ms_p99", "early_attempts", "lateness_ms_quantiles", "lateness_ms_by_tier"}},
		{"slow", []string{"slow_endpoints", "healthy_events", "slow_events", "healthy_deliveries_per_second_without_slow", "healthy_deliveries_per_second_with_slow", "ratio", "peak_rss_bytes"},
			[]string{"slow_requests"}},
	}
	var out bytes.Buffer
	args := []string{"--scenario", "all", "--json", "--partitions", "2", "--events", "300", "--keys", "300",
		"--clients", "8", "--batch-size", "50", "--rate", "600", "--tier-scale", "0.002", "--endpoints", "10", "--slow-timeout", "200ms"}
	if err := benchMain(t.Context(), args, &out); err != nil {
		t.Fatalf("bench %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line is not one JSON object: %v\n%s", err, line)
		}
		name, _ := obj["scenario"].(string)
		got[name] = obj
	}
	for _, s := range benchScenarios {
		if _, ok := got[s.name]; !ok && s.name != "scale" {
			t.Errorf("scenario %s printed nothing", s.name)
		}
		if !slices.ContainsFunc(tests, func(tt fields) bool { return tt.scenario == s.name }) && s.name != "scale" {
			t.Errorf("scenario %s has no entry in this test", s.name)
		}
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			res := got[tt.scenario]
			if res == nil {
				t.Fatalf("no output")
			}
			for _, k := range tt.positive {
				if v, ok := res[k].(float64); !ok || v <= 0 {
					t.Errorf("%s = %v, want a number above 0", k, res[k])
				}
			}
			for _, k := range tt.present {
				if _, ok := res[k]; !ok {
					t.Errorf("%s is missing", k)
				}
			}
			if tt.scenario == "tiers" {
				qs, _ := res["lateness_ms_quantiles"].([]any)
				if len(qs) != 102 {
					t.Errorf("lateness_ms_quantiles has %d points, want 102", len(qs))
				}
			}
		})
	}
}

// A scenario that needs a real Kafka says so instead of running on the
// embedded broker, and a misspelt scenario names the valid ones.
func TestBenchRefusesClearly(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "scale"}, "--brokers"},
		{[]string{"--scenario", "nope"}, "e2e, keys, tiers"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := benchMain(t.Context(), tt.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("bench %v: error %v, want one mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}
