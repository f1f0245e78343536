package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/processors"
)

// Generate writes n synthetic dead-lettered pairs into the DLQ, shaped like
// the pipeline's (envelope value, ordering key, full retry state headers),
// spread over partitions, endpoints, event types, error classes and the last
// ten days. It is for measuring the tooling on a deep DLQ, never for a
// production cluster.
func (c *Client) Generate(ctx context.Context, n int) error {
	spans, err := c.bounds(ctx, c.cfg.Topics.DLQ)
	if err != nil {
		return err
	}
	parts := int32(len(spans))
	cl, err := kgo.NewClient(c.cfg.opts(
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
	)...)
	if err != nil {
		return fmt.Errorf("create generator producer: %w", err)
	}
	defer cl.Close()

	classes := []struct {
		class  processors.ErrorClass
		status int
		err    string
	}{
		{processors.ClassHTTP5xx, 503, "HTTP 503 Service Unavailable"},
		{processors.ClassTimeout, 0, "Post \"https://example.com/hook\": context deadline exceeded"},
		{processors.ClassHTTP4xx, 400, "HTTP 400 Bad Request: invalid signature"},
		{processors.ClassConnection, 0, "dial tcp 10.0.0.7:443: connect: connection refused"},
	}
	pad := strings.Repeat("x", 160)
	now := c.cfg.Now()
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		ep := fmt.Sprintf("ep-%03d", i%50)
		at := now.Add(-time.Duration(i%(10*24*60)) * time.Minute)
		payload, _ := json.Marshal(map[string]any{"n": i, "pad": pad})
		ev := envelope.Event{V: envelope.Version, ID: fmt.Sprintf("gen-%d", i), Type: []string{"order.created", "order.paid", "invoice.sent"}[i%3],
			EndpointID: ep, Payload: payload, CreatedAt: at.Add(-time.Hour)}
		value, err := envelope.Encode(ev)
		if err != nil {
			return err
		}
		cls := classes[i%len(classes)]
		p := int32(i) % parts
		st := processors.RetryState{
			Attempts: 5, FirstAttempt: at.Add(-time.Hour), Entered: at,
			LastStatus: cls.status, LastError: cls.err, LastClass: cls.class,
			OriginTopic: c.cfg.Topics.Events, OriginPartition: p, OriginOffset: int64(i),
			EndpointID: ep, Tier: processors.TierDLQ, DLQReason: "attempts exhausted after 5 attempts: " + cls.err,
		}
		rec := &kgo.Record{
			Topic: c.cfg.Topics.DLQ, Partition: p, Key: []byte(ep), Value: value,
			Headers: append([]kgo.RecordHeader{{Key: envelope.HeaderVersion, Value: []byte("1")}}, st.Headers()...),
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
		mu.Lock()
		err = firstErr
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("generate DLQ records: %w", err)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}
