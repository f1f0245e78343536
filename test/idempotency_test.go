package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookline/hookline/envelope"
)

// TestIdempotencyKeyAcrossTwoProcesses: two serve processes on one Kafka,
// and a client whose retry of an Idempotency-Key reaches the other process
// after the first answered 202. The retry is answered as a duplicate with
// the first event's id, and the events topic holds one event per key.
// docs/design/idempotency.md states the guarantee.
func TestIdempotencyKeyAcrossTwoProcesses(t *testing.T) {
	requireOutsideKafka(t)
	const partitions = 4
	brokers := outsideBrokers(t, partitions)
	prefix := chaosPrefix(t)
	var nodes []*node
	for _, name := range []string{"idem-a", "idem-b"} {
		n := newNode(t, name, brokers, prefix, partitions, "--data-dir", filepath.Join(t.TempDir(), name))
		n.start()
		nodes = append(nodes, n)
	}

	post := func(n *node, key string) (status int, id string, dup bool) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"t","tenant":"acme","payload":{"key":%q}}`, key)
		req, err := http.NewRequest("POST", "http://"+n.api+"/v1/events", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post %s to %s: %v", key, n.name, err)
		}
		defer func() { _ = resp.Body.Close() }()
		code := resp.StatusCode
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil {
			t.Fatalf("post %s to %s: read the answer: %v", key, n.name, err)
		}
		var res struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("post %s to %s: %d %q is not an answer", key, n.name, code, raw)
		}
		return code, res.ID, res.Duplicate
	}

	const keys = 10
	firstIDs := make(map[string]string)
	for i := range keys {
		key := fmt.Sprintf("pay-%d", i)
		first, other := nodes[i%2], nodes[(i+1)%2]
		code, id, dup := post(first, key)
		if code != http.StatusAccepted || dup {
			t.Fatalf("first post of %s to %s: %d duplicate=%v, want a new event", key, first.name, code, dup)
		}
		code, retryID, dup := post(other, key)
		if code != http.StatusAccepted || !dup || retryID != id {
			t.Fatalf("retry of %s at %s: %d id %s duplicate=%v, want a duplicate of %s", key, other.name, code, retryID, dup, id)
		}
		firstIDs[key] = id
	}

	set := chaosTopics(prefix, partitions)
	perKey := make(map[string]int)
	for _, r := range readAll(t, brokers, false, set.Events)[set.Events].records {
		for _, h := range r.Headers {
			if h.Key == envelope.HeaderIdempotencyKey {
				perKey[string(h.Value)]++
			}
		}
	}
	for key, id := range firstIDs {
		if perKey[key] != 1 {
			t.Errorf("%s: %d events in %s, want 1 (%s)", key, perKey[key], set.Events, id)
		}
	}
	for _, n := range nodes {
		n.stop()
	}
}
