package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// An oversized batch is refused once its (MaxBatch+1)th event is seen:
// the rest of the body is never read, let alone decoded.
func TestOversizedBatchStopsReading(t *testing.T) {
	body := oversizedBatch()
	s, err := New(Config{EventsTopic: "events", Registry: fuzzRegistry{}, Producer: producerFunc(func([]*kgo.Record) {}), MaxBatch: 500})
	if err != nil {
		t.Fatal(err)
	}
	r := &countingReader{r: bytes.NewReader(body)}
	req := httptest.NewRequest(http.MethodPost, "/v1/events/batch", r)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"field":"events"`) || !strings.Contains(w.Body.String(), "at most 500") {
		t.Fatalf("answer %d %s, want 400 naming events", w.Code, w.Body.String())
	}
	if r.n > 64<<10 {
		t.Fatalf("read %d of %d bytes to refuse a batch over 500 events; want it to stop after the 501st", r.n, len(body))
	}
}
