package ingest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/hookline/hookline/envelope"
)

// LoadIdempotency rebuilds the dedupe index from the events topic, so a
// duplicate is still caught after a restart: it reads every partition from
// the first record of the idempotency window to the end offsets as of the
// call, and indexes each event's id and hookline-idempotency-key header.
// Call it before serving.
//
// cl is only used for its connection settings (seed brokers, dialer, TLS,
// SASL): the topic is read by a short-lived consumer of its own, so cl may
// be the producer of Config.Producer.
func (s *Server) LoadIdempotency(ctx context.Context, cl *kgo.Client) error {
	topic := s.cfg.EventsTopic
	adm := kadm.NewClient(cl)
	since := s.cfg.Now().Add(-s.cfg.IdempotencyWindow)
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list offsets of %s since %s: %w", topic, since.Format("2006-01-02T15:04:05Z07:00"), err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if len(ends[topic]) == 0 {
		return fmt.Errorf("list end offsets of %s: topic has no partitions", topic)
	}

	from := make(map[int32]kgo.Offset)
	until := make(map[int32]int64) // partition -> end offset as of the call
	ends.Each(func(end kadm.ListedOffset) {
		start, ok := starts.Lookup(topic, end.Partition)
		if !ok || start.Offset < 0 || start.Offset >= end.Offset {
			return
		}
		from[end.Partition] = kgo.NewOffset().At(start.Offset)
		until[end.Partition] = end.Offset
	})
	if len(until) == 0 {
		s.cfg.Logger.Info("idempotency index loaded", "topic", topic, "records", 0)
		return nil
	}

	// Control records are kept so a partition that ends in a transaction
	// marker still reaches its end offset.
	consumer, err := kgo.NewClient(append(connectionOpts(cl),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("create consumer of %s: %w", topic, err)
	}
	defer consumer.Close()

	var records int
	for len(until) > 0 {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s for the idempotency index: %w", topic, err)
		}
		if err := fetchError(fs); err != nil {
			return fmt.Errorf("read %s for the idempotency index: %w", topic, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := until[rec.Partition]
			if !ok || rec.Offset >= end {
				return
			}
			if rec.Offset+1 >= end {
				delete(until, rec.Partition)
			}
			if rec.Attrs.IsControl() {
				return
			}
			records++
			s.index(rec)
		})
	}
	s.cfg.Logger.Info("idempotency index loaded", "topic", topic, "records", records, "keys", s.dedupe.size())
	return nil
}

// index adds an events-topic record to the dedupe index, in the namespace
// of the tenant it belongs to: the one its HeaderTenant names, or for a
// record without it (written straight to Kafka, or re-driven from the DLQ)
// its own tenant or that of its endpoint now. A record whose value has no
// id (a malformed one, bound for the DLQ) has nothing to add.
func (s *Server) index(rec *kgo.Record) {
	var ev struct {
		ID         string `json:"id"`
		EndpointID string `json:"endpoint_id"`
		Tenant     string `json:"tenant"`
	}
	if err := json.Unmarshal(rec.Value, &ev); err != nil || ev.ID == "" {
		return
	}
	tenant, stamped := ev.Tenant, false
	for _, h := range rec.Headers {
		if h.Key == HeaderTenant {
			tenant, stamped = string(h.Value), true
		}
	}
	if !stamped && ev.EndpointID != "" {
		ep, _ := s.cfg.Registry.Get(ev.EndpointID)
		tenant = ep.Tenant
	}
	s.dedupe.load(idDedupeKey(tenant, ev.ID), ev.ID, rec.Timestamp)
	for _, h := range rec.Headers {
		if h.Key == envelope.HeaderIdempotencyKey && len(h.Value) > 0 {
			s.dedupe.load(idempotencyDedupeKey(tenant, string(h.Value)), ev.ID, rec.Timestamp)
		}
	}
}

func fetchError(fs kgo.Fetches) error {
	var errs []error
	fs.EachError(func(topic string, partition int32, err error) {
		errs = append(errs, fmt.Errorf("partition %d: %w", partition, err))
	})
	return errors.Join(errs...)
}

// connectionOpts copies how cl reaches the cluster, and nothing else: not
// its group, transactional id or hooks, which a second client must not share.
func connectionOpts(cl *kgo.Client) []kgo.Opt {
	seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	// A client's dialer is always set once it exists: kgo builds one from
	// DialTLSConfig, and refuses both options together. So the dialer
	// carries TLS, and the TLS config is copied only for a client without.
	if dial, _ := cl.OptValue(kgo.Dialer).(func(context.Context, string, string) (net.Conn, error)); dial != nil {
		opts = append(opts, kgo.Dialer(dial))
	} else if tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config); tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(mechs) > 0 {
		opts = append(opts, kgo.SASL(mechs...))
	}
	return opts
}
