package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/topics"
)

// A full demo run, logging at debug level, writes no signing secret to its
// output: every secret the demo registered (read back from its endpoints
// topic afterwards) is absent from stderr and stdout, and nothing there even
// looks like a secret.
func TestDemoLogsNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline for about 20 s")
	}
	dataDir := t.TempDir()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, outW
	collected := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(outR)
		collected <- string(b)
	}()
	runErr := runDemo(t.Context(), []string{"--events", "200", "--json", "--log-level", "debug", "--data-dir", dataDir})
	os.Stdout, os.Stderr = stdout, stderr
	_ = outW.Close()
	out := <-collected
	if runErr != nil {
		t.Fatalf("demo: %v\n%s", runErr, out)
	}

	secrets := demoSecrets(t, dataDir)
	if len(secrets) < 6 {
		t.Fatalf("found %d secrets in the demo's endpoints topic, want one per receiver (6)", len(secrets))
	}
	for _, s := range secrets {
		b64 := s[strings.Index(s, "_")+1:]
		if strings.Contains(out, b64) {
			t.Errorf("the demo's output contains a signing secret (%s)", endpoints.Mask(s))
		}
	}
	if m := regexp.MustCompile(`wh(sec|sk)_[A-Za-z0-9+/]{8,}`).FindString(out); m != "" {
		t.Errorf("the demo's output contains something that looks like a secret: %s…", m[:10])
	}
	if !strings.Contains(out, "allow_private_destinations is on") {
		t.Errorf("the demo does not say that it allows private destinations:\n%s", out)
	}
	t.Logf("checked %d secrets against %d bytes of demo output", len(secrets), len(out))
}

// demoSecrets reopens the demo's embedded broker and returns every secret
// in its endpoints topic.
func demoSecrets(t *testing.T, dataDir string) []string {
	t.Helper()
	d := config.Default()
	emb, err := app.StartEmbedded("127.0.0.1:0", dataDir, int32(d.Partitions), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	set := topics.New(d.TopicPrefix, d.Tiers, d.TierScale, int32(d.Partitions), -1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addrs()...), kgo.ConsumeTopics(set.Endpoints),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var secrets []string
	for len(secrets) < 6 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var e endpoints.Endpoint
			if json.Unmarshal(r.Value, &e) == nil {
				secrets = append(secrets, e.Secrets...)
			}
		})
	}
	return secrets
}
