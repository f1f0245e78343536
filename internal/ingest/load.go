package ingest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/hookline/hookline/envelope"
)

// LoadIdempotency builds the dedupe index and starts following the events
// topic: from the snapshot in Config.SnapshotPath and the records after the
// offsets it covers, or, without a usable snapshot, from every record of the
// idempotency window. It returns once the index has read up to the end
// offsets as of the call. It refuses an idempotency window longer than the
// topic's retention. Call it before serving, then run FollowIdempotency,
// which keeps the index up to date with what every process writes.
//
// cl is only used for its connection settings (seed brokers, dialer, TLS,
// SASL) and for the admin requests: the topic is read by a consumer of its
// own, so cl may be the producer of Config.Producer.
func (s *Server) LoadIdempotency(ctx context.Context, cl *kgo.Client) error {
	began := time.Now()
	topic := s.cfg.EventsTopic
	adm := kadm.NewClient(cl)
	if err := s.checkRetention(ctx, adm); err != nil {
		return err
	}
	ends, err := listEnds(ctx, adm, topic)
	if err != nil {
		return err
	}
	since := s.cfg.Now().Add(-s.cfg.IdempotencyWindow)
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list offsets of %s since %s: %w", topic, since.Format(time.RFC3339), err)
	}

	from := make(map[int32]int64, len(ends))
	for p, end := range ends {
		from[p] = end
		if start, ok := starts.Lookup(topic, p); ok && start.Offset >= 0 && start.Offset < end {
			from[p] = start.Offset
		}
	}
	source := "topic"
	if s.cfg.SnapshotPath != "" {
		idx, covered, err := readSnapshot(s.cfg.SnapshotPath, topic, s.cfg.IdempotencyWindow, s.cfg.Now)
		if err == nil {
			err = snapshotFits(covered, ends)
		}
		switch {
		case errors.Is(err, errNoSnapshot):
		case err != nil:
			s.cfg.Logger.Warn("idempotency snapshot not used, reading the window from the topic", "path", s.cfg.SnapshotPath, "err", err)
		default:
			s.dedupe, source = idx, "snapshot"
			for p, off := range covered {
				if off > from[p] {
					from[p] = off
				}
			}
		}
	}

	f, err := newFollower(s, cl, from)
	if err != nil {
		return err
	}
	if err := f.readUntil(ctx, ends); err != nil {
		f.consumer.Close()
		return fmt.Errorf("read %s for the idempotency index: %w", topic, err)
	}
	s.follow = f
	s.cfg.Logger.Info("idempotency index loaded", "topic", topic, "from", source,
		"records", f.records, "keys", s.dedupe.size(), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// FollowIdempotency reads what any process writes to the events topic into
// the index until ctx ends, and writes a snapshot every
// Config.SnapshotInterval and once more when it stops. Call it after
// LoadIdempotency succeeded.
func (s *Server) FollowIdempotency(ctx context.Context) error {
	f := s.follow
	if f == nil {
		return errors.New("follow the events topic: LoadIdempotency has not run")
	}
	defer f.consumer.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.cfg.SnapshotPath != "" {
		wg.Go(func() {
			t := time.NewTicker(s.cfg.SnapshotInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					s.snapshot()
					return
				case <-t.C:
					s.snapshot()
				}
			}
		})
	}
	for ctx.Err() == nil {
		if err := f.poll(ctx); err != nil && ctx.Err() == nil {
			// kgo retries by itself; the pause only keeps a lasting error
			// from filling the log.
			s.cfg.Logger.Warn("read events topic for the idempotency index", "topic", s.cfg.EventsTopic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (s *Server) snapshot() {
	began := time.Now()
	n, err := writeSnapshot(s.cfg.SnapshotPath, s.cfg.EventsTopic, s.cfg.IdempotencyWindow, s.cfg.Now(), s.follow.positions(), s.dedupe)
	if err != nil {
		s.cfg.Logger.Warn("write idempotency snapshot", "path", s.cfg.SnapshotPath, "err", err)
		return
	}
	s.cfg.Logger.Debug("idempotency snapshot written", "path", s.cfg.SnapshotPath, "keys", n, "took", time.Since(began).Round(time.Millisecond))
}

// checkRetention refuses a window the events topic does not keep.
func (s *Server) checkRetention(ctx context.Context, adm *kadm.Client) error {
	topic := s.cfg.EventsTopic
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.Value != nil {
			return CheckRetention(s.cfg.IdempotencyWindow, topic, *c.Value)
		}
	}
	return nil
}

// CheckRetention returns an error naming idempotency_window if window is
// longer than retentionMs, the events topic's retention.ms: an original
// deleted by retention could no longer be found after a restart. A
// retention of -1 keeps everything.
func CheckRetention(window time.Duration, topic, retentionMs string) error {
	ms, err := strconv.ParseInt(retentionMs, 10, 64)
	if err != nil {
		return fmt.Errorf("topic %s: retention.ms %q is not a number", topic, retentionMs)
	}
	if ms < 0 {
		return nil
	}
	if retention := time.Duration(ms) * time.Millisecond; window > retention {
		return fmt.Errorf("idempotency_window %v is longer than the retention of topic %s (retention.ms %d, %v): shorten idempotency_window or raise the topic's retention.ms", window, topic, ms, retention)
	}
	return nil
}

// snapshotFits refuses a snapshot that claims offsets the topic does not
// have (the topic was recreated, or it is another cluster's).
func snapshotFits(covered, ends map[int32]int64) error {
	for p, off := range covered {
		end, ok := ends[p]
		if !ok {
			return fmt.Errorf("snapshot covers partition %d, which the topic does not have", p)
		}
		if off > end {
			return fmt.Errorf("snapshot covers partition %d up to offset %d, past its end offset %d", p, off, end)
		}
	}
	return nil
}

func listEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	ends := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		return nil, fmt.Errorf("list end offsets of %s: topic has no partitions", topic)
	}
	return ends, nil
}

// follower reads the events topic into the index, and knows how far it has
// read, so a request can wait until it has seen what other processes wrote.
type follower struct {
	s        *Server
	consumer *kgo.Client
	ends     endsBarrier
	records  int // read so far, for the load log line

	mu       sync.Mutex
	pos      map[int32]int64 // partition -> next offset to read
	progress chan struct{}   // closed, and replaced, when pos advances
}

func newFollower(s *Server, cl *kgo.Client, from map[int32]int64) (*follower, error) {
	topic := s.cfg.EventsTopic
	offsets := make(map[int32]kgo.Offset, len(from))
	for p, off := range from {
		offsets[p] = kgo.NewOffset().At(off)
	}
	// Control records are kept so a partition that ends in a transaction
	// marker still reaches its end offset.
	consumer, err := kgo.NewClient(append(connectionOpts(cl),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("create consumer of %s: %w", topic, err)
	}
	adm := kadm.NewClient(cl)
	f := &follower{s: s, consumer: consumer, pos: from, progress: make(chan struct{})}
	f.ends.list = func(ctx context.Context) (map[int32]int64, error) { return listEnds(ctx, adm, topic) }
	f.ends.timeout = s.cfg.ProduceTimeout
	return f, nil
}

// readUntil polls until every partition has been read up to ends.
func (f *follower) readUntil(ctx context.Context, ends map[int32]int64) error {
	for !f.reached(ends) {
		if err := f.poll(ctx); err != nil {
			return err
		}
	}
	return nil
}

// poll reads one batch of fetches into the index.
func (f *follower) poll(ctx context.Context) error {
	fs := f.consumer.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fetchError(fs); err != nil {
		return err
	}
	next := make(map[int32]int64)
	fs.EachRecord(func(rec *kgo.Record) {
		next[rec.Partition] = rec.Offset + 1
		if !rec.Attrs.IsControl() {
			f.records++
			f.s.index(rec)
		}
	})
	if len(next) == 0 {
		return nil
	}
	f.mu.Lock()
	for p, off := range next {
		f.pos[p] = max(f.pos[p], off)
	}
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
	return nil
}

func (f *follower) reached(ends map[int32]int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, end := range ends {
		if pos, ok := f.pos[p]; ok && pos < end {
			return false
		}
	}
	return true
}

func (f *follower) positions() map[int32]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int32]int64, len(f.pos))
	for p, off := range f.pos {
		out[p] = off
	}
	return out
}

// catchUp waits until the index has read every record that was in the
// events topic when it was called: a key that another process answered 202
// for before then is in the index when catchUp returns.
func (f *follower) catchUp(ctx context.Context) error {
	ends, err := f.ends.get(ctx)
	if err != nil {
		return err
	}
	for {
		f.mu.Lock()
		wait := f.progress
		f.mu.Unlock()
		if f.reached(ends) {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// endsBarrier lists the end offsets of the events topic for concurrent
// callers with one request: a caller joins the next listing that has not
// been sent yet, so what it gets is never older than its call.
type endsBarrier struct {
	list    func(ctx context.Context) (map[int32]int64, error)
	timeout time.Duration

	mu      sync.Mutex
	next    *endsRound
	running bool
}

type endsRound struct {
	done chan struct{}
	ends map[int32]int64
	err  error
}

func (b *endsBarrier) get(ctx context.Context) (map[int32]int64, error) {
	b.mu.Lock()
	r := b.next
	if r == nil {
		r = &endsRound{done: make(chan struct{})}
		b.next = r
	}
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.ends, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends one listing per round until no caller waits; each listing is
// bounded by b.timeout, so run always ends.
func (b *endsBarrier) run() {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		r.ends, r.err = b.list(ctx)
		cancel()
		close(r.done)
	}
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
	s.dedupe.load(hashKey(idDedupeKey(tenant, ev.ID)), ev.ID, rec.Timestamp)
	for _, h := range rec.Headers {
		if h.Key == envelope.HeaderIdempotencyKey && len(h.Value) > 0 {
			s.dedupe.load(hashKey(idempotencyDedupeKey(tenant, string(h.Value))), ev.ID, rec.Timestamp)
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
