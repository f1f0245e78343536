package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/ingest"
)

// Disabling an endpoint records why, whether it is disabled through the
// HTTP API or through the CLI: both apply the endpoints package's rule.
// The API and the CLI work on the same endpoints topic here, and the
// reason is read back from the registry.
func TestDisableRecordsReasonThroughAPIAndCLI(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	const topic = "hookline.endpoints"
	if err := c.CreateTopic(topic, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(c.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reg := endpoints.NewRegistry(cl, topic, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = reg.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := reg.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Config{EventsTopic: "hookline.events", Registry: reg, Producer: cl})
	if err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) {
		t.Helper()
		args = append(args, "--brokers", brokers)
		if err := runEndpoints(ctx, args); err != nil {
			t.Fatalf("endpoints %v: %v", args, err)
		}
	}
	api := func(id, body string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPatch, "/v1/endpoints/"+id, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("PATCH %s %s: %d %s", id, body, rec.Code, rec.Body)
		}
	}
	// reason waits until the registry has read the change back.
	reason := func(id string, enabled bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e, ok := reg.Get(id)
			if ok && e.Enabled == enabled {
				return e.DisabledReason
			}
			if time.Now().After(deadline) {
				t.Fatalf("endpoint %s: found %v, enabled %v; want enabled %v", id, ok, e.Enabled, enabled)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	for _, id := range []string{"ep_api", "ep_cli", "ep_cli_why"} {
		cli("add", "--id", id, "--url", "https://hooks.example.com/"+id)
		if got := reason(id, true); got != "" {
			t.Fatalf("new endpoint %s has a disabled reason %q", id, got)
		}
	}

	api("ep_api", `{"enabled":false}`)
	cli("update", "ep_cli", "--enabled=false")
	cli("update", "ep_cli_why", "--enabled=false", "--disabled-reason", "receiver migrating")
	for id, want := range map[string]string{
		"ep_api":     "disabled through the API",
		"ep_cli":     "disabled through the CLI",
		"ep_cli_why": "receiver migrating",
	} {
		if got := reason(id, false); got != want {
			t.Errorf("disabled %s: reason %q, want %q", id, got, want)
		}
	}

	// Re-enabling forgets the reason, through either.
	api("ep_api", `{"enabled":true}`)
	cli("update", "ep_cli", "--enabled=true")
	for _, id := range []string{"ep_api", "ep_cli"} {
		if got := reason(id, true); got != "" {
			t.Errorf("re-enabled %s: reason %q, want none", id, got)
		}
	}
}
