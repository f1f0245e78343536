package main

import (
	"encoding/json"
	"io"
	"os"
	"slices"
	"testing"
)

// The demo's JSON summary has exactly the documented keys and reports no
// loss and no signature failure, with deliveries, retries and dead letters.
func TestDemoJSONSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline for about 20 s")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	runErr := runDemo(t.Context(), []string{"--events", "300", "--json"})
	os.Stdout = stdout
	_ = w.Close()
	out, _ := io.ReadAll(r)
	if runErr != nil {
		t.Fatalf("demo: %v\n%s", runErr, out)
	}
	var sum map[string]json.RawMessage
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("summary is not one JSON object: %v\n%s", err, out)
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"dead_lettered", "delivered", "deliveries_per_second", "duplicates", "latency_ms_p50", "latency_ms_p99", "lost", "retried", "sent", "signature_failures"}
	if !slices.Equal(keys, want) {
		t.Fatalf("summary keys %v, want %v", keys, want)
	}
	var s DemoSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if s.Sent != 300 || s.Lost != 0 || s.SignatureFailures != 0 || s.Delivered == 0 || s.DeadLettered == 0 || len(s.Retried) == 0 {
		t.Fatalf("unexpected summary: %+v", s)
	}
	if s.Delivered+s.DeadLettered != s.Sent {
		t.Fatalf("delivered %d + dead-lettered %d != sent %d", s.Delivered, s.DeadLettered, s.Sent)
	}
}
