package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/endpoints"
)

// fuzzRegistry knows two endpoints and refuses writes.
type fuzzRegistry struct{}

func (fuzzRegistry) Get(id string) (endpoints.Endpoint, bool) {
	switch id {
	case "ep_1":
		return endpoints.Endpoint{ID: id, Tenant: "acme", Enabled: true}, true
	case "ep_off":
		return endpoints.Endpoint{ID: id}, true
	}
	return endpoints.Endpoint{}, false
}
func (fuzzRegistry) ByTenant(string, string) []endpoints.Endpoint { return nil }
func (fuzzRegistry) List() []endpoints.Endpoint                   { return nil }
func (fuzzRegistry) Create(context.Context, endpoints.Endpoint) error {
	return endpoints.ErrExists
}
func (fuzzRegistry) Update(context.Context, string, func(*endpoints.Endpoint) error) error {
	return endpoints.ErrNotFound
}
func (fuzzRegistry) Delete(context.Context, string) error { return endpoints.ErrNotFound }

// The ingest API's JSON decoding never panics and answers every body with
// 202 or a 4xx carrying a JSON reason; what it accepts is a valid envelope.
func FuzzIngestJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"order.created","endpoint_id":"ep_1","payload":{"a":1}}`,
		`{"id":"evt_1","type":"t","tenant":"acme","ordering_key":"k","payload":[1,"x",null,true,1e308]}`,
		`{"type":"t","endpoint_id":"ep_off","payload":{}}`,
		`{"type":"t","tenant":"acme","payload":{},"extra":1}`,
		`{"type":1}`, `{"payload":"\ud800"}`, `[]`, `{}{}`, `nul`, ``,
		`{"events":[{"type":"t","tenant":"a","payload":1},{"type":"t","tenant":"b","payload":2}]}`,
		`{"events":[{"type":"t"}]}`, `{"events":{}}`, `{"events":[]}`,
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, batch bool, body []byte) {
		var produced []*kgo.Record
		s, err := New(Config{
			EventsTopic: "events", Registry: fuzzRegistry{}, Producer: producerFunc(func(rs []*kgo.Record) { produced = append(produced, rs...) }),
			MaxPayloadBytes: 4096, MaxBatch: 16, Now: func() time.Time { return time.Unix(1_700_000_000, 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		path := "/v1/events"
		if batch {
			path = "/v1/events/batch"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusAccepted:
			for _, r := range produced {
				if _, err := envelope.Decode(r.Value); err != nil {
					t.Fatalf("accepted %q and wrote an envelope that does not decode: %v", body, err)
				}
			}
		case w.Code >= 400 && w.Code < 500:
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%d answer without a JSON reason: %q", w.Code, w.Body.String())
			}
		default:
			t.Fatalf("%q answered %d: %s", body, w.Code, w.Body.String())
		}
	})
}

// producerFunc records what is produced and succeeds.
type producerFunc func([]*kgo.Record)

func (p producerFunc) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p(rs)
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r}
	}
	return out
}
