package processors

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/rawjson"
)

// TestWebhookBodyMatchesRawJSON holds WebhookBody to what it was built
// with before, rawjson.Object of its head, byte for byte, over many random
// events whose strings carry everything encoding/json escapes and whose
// payloads are valid, invalid, or wrapped in whitespace.
func TestWebhookBodyMatchesRawJSON(t *testing.T) {
	type webhookHead struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Tenant    string `json:"tenant,omitempty"`
		Timestamp string `json:"timestamp"`
	}
	rng := rand.New(rand.NewPCG(17, 5))
	pieces := []string{
		"", "a", "evt_0123456789", "order.created", "<script>&amp;</script>", "\"q\"", `b\s`,
		"\n\r\t\b\f", "\x00\x1f\x7f", "é", "日本", "\u2028\u2029", "\xff", "\xe2\x80", "\U0001F600",
	}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(4) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	payloads := []string{
		`{}`, `null`, `{"html":"<b>&</b>","sep":"` + "\u2028" + `"}`, " \n[1, 2] \t", `"caf\u00e9"`,
		`12345678901234567890.000`, `{"a":`, ``, `  `, "{\"z\" : 1 ,\n\t\"a\":[ 1 ] }",
	}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", -7*3600)}
	for i := range 20000 {
		ev := envelope.Event{
			ID: str(), Type: str(), Tenant: str(), Payload: json.RawMessage(payloads[rng.IntN(len(payloads))]),
			CreatedAt: time.Unix(rng.Int64N(400_000_000_000)-100_000_000_000, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))]),
		}
		if rng.IntN(8) == 0 {
			ev.CreatedAt = time.Time{}
		}
		got, err := WebhookBody(ev)
		want, wantErr := rawjson.Object(webhookHead{
			ID: ev.ID, Type: ev.Type, Tenant: ev.Tenant, Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano),
		}, "data", ev.Payload)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("event %d %+v: error %v, rawjson error %v", i, ev, err, wantErr)
		}
		if err != nil {
			if want := "encode webhook body of event " + ev.ID + ": " + wantErr.Error(); err.Error() != want {
				t.Fatalf("event %d: error %q, want %q", i, err, want)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
