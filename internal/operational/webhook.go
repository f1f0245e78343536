package operational

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/signature"
)

// Defaults of a Forwarder.
const (
	// DefaultWebhookTimeout bounds one POST to the operator webhook.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultMaxBackoff caps the wait between retries of one event.
	DefaultMaxBackoff = 30 * time.Second
)

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// URL and Secret are the operator webhook and its signing secret.
	URL    string
	Secret string
	// Topic is the operational topic; Group the consumer group that
	// tracks what was forwarded (one per deployment, shared by its serve
	// processes).
	Topic string
	Group string
	// ClientOpts carry the connection options (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	// Timeout bounds one POST; default DefaultWebhookTimeout.
	Timeout time.Duration
	// MaxBackoff caps the wait between retries; default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Requests counts the POSTs by outcome (NewRequestsMetric); nil
	// counts nowhere.
	Requests *prometheus.CounterVec
	Logger   *slog.Logger
}

// NewRequestsMetric registers hookline_operator_webhook_requests_total.
// serve registers it whether or not an operator webhook is configured, so
// the metric set does not depend on the configuration.
func NewRequestsMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	return promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_operator_webhook_requests_total",
		Help: "POSTs of operational events to the operator webhook, by outcome (delivered, failed); a failed one is retried.",
	}, []string{"outcome"})
}

// Forwarder POSTs every event of the operational topic to the operator
// webhook, in order per partition, signed with Standard Webhooks (the
// event id is the webhook-id). It commits an event's offset only once the
// webhook answered 2xx, so delivery is at-least-once and survives
// restarts; while the webhook fails, the event is retried with backoff and
// the ones behind it wait in Kafka, not in memory, for as long as the
// topic keeps them.
type Forwarder struct {
	cfg    ForwarderConfig
	cl     *kgo.Client
	http   *http.Client
	log    *slog.Logger
	posted *prometheus.CounterVec
}

// NewForwarder creates the forwarder's consumer-group client.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("operator webhook forwarder: URL is required")
	case cfg.Secret == "":
		return nil, errors.New("operator webhook forwarder: Secret is required")
	case cfg.Topic == "" || cfg.Group == "":
		return nil, errors.New("operator webhook forwarder: Topic and Group are required")
	}
	if err := signature.ValidateSecret(cfg.Secret); err != nil {
		return nil, fmt.Errorf("operator webhook forwarder: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Requests == nil {
		cfg.Requests = NewRequestsMetric(prometheus.NewRegistry())
	}
	opts := append([]kgo.Opt{}, cfg.ClientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// Stages write events in their transactions: an aborted one's
		// events never happened.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// No BlockRebalanceOnPoll: while the webhook is down, one event
		// is retried for as long as it takes, and that must not hold the
		// group's rebalances. A partition revoked meanwhile is forwarded
		// again by its new owner: a repeat with the same webhook-id.
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create operator webhook client: %w", err)
	}
	return &Forwarder{
		cfg: cfg, cl: cl, log: cfg.Logger,
		http: &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		posted: cfg.Requests,
	}, nil
}

// Run forwards events until ctx is done, then commits what was forwarded
// and leaves the group.
func (f *Forwarder) Run(ctx context.Context) error {
	defer f.cl.Close()
	for {
		fs := f.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return kgo.ErrClientClosed
		}
		fs.EachError(func(topic string, p int32, err error) {
			f.log.Warn("fetch operational events", "topic", topic, "partition", p, "err", err)
		})
		var done []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if ctx.Err() != nil {
				return
			}
			if f.forward(ctx, r) {
				done = append(done, r)
			}
		})
		if len(done) > 0 {
			// At-least-once: a commit that fails only means a repeat.
			if err := f.cl.CommitRecords(context.WithoutCancel(ctx), done...); err != nil {
				f.log.Warn("commit forwarded operational events", "err", err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// forward POSTs one event until the webhook takes it or ctx ends. An event
// this version cannot read is forwarded as it is: the webhook may know it.
func (f *Forwarder) forward(ctx context.Context, r *kgo.Record) bool {
	id := fmt.Sprintf("op_%s_%d_%d", r.Topic, r.Partition, r.Offset)
	if ev, err := Decode(r.Value); err == nil {
		id = ev.ID
	}
	wait := 200 * time.Millisecond
	for {
		err := f.post(ctx, id, r.Value)
		if err == nil {
			f.posted.WithLabelValues("delivered").Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.posted.WithLabelValues("failed").Inc()
		f.log.Warn("operator webhook failed, retrying", "event_id", id, "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, f.cfg.MaxBackoff)
	}
}

func (f *Forwarder) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build operator webhook request: %w", err)
	}
	if err := signature.Headers(req.Header, []string{f.cfg.Secret}, id, time.Now(), body); err != nil {
		return fmt.Errorf("sign operational event %s: %w", id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		// The URL may carry a token; the error goes to the logs.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return fmt.Errorf("post operational event %s: %w", id, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post operational event %s: HTTP %d", id, resp.StatusCode)
	}
	return nil
}
