package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/topics"
)

// ErrNotFound is wrapped by Find when nothing in the DLQ matches.
var ErrNotFound = errors.New("not found in the DLQ")

// ErrNoTopic is wrapped when a topic the command reads does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// fetchMaxBytes bounds one fetch response, and so what a read buffers:
// kgo holds one response decompressed while the next is fetched, and a
// compressed batch can grow tenfold.
const fetchMaxBytes = 1 << 20

// A read that gets no record for idleLimit checks whether its partitions
// can still deliver one (see read); it polls in steps of idlePoll.
const (
	idleLimit = 3 * time.Second
	idlePoll  = time.Second
)

// Config is what a Client needs.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string
	// ClientOpts are added to every client the package creates (TLS,
	// SASL); they must not set a group or a transactional id.
	ClientOpts []kgo.Opt
	Topics     topics.Set
	// TenantOf returns an endpoint's tenant, for pairs whose event names
	// the endpoint directly; nil leaves their tenant empty.
	TenantOf func(endpointID string) string
	// KafkaUser is the SASL user the clients authenticate as, when SASL is
	// configured. Replays record it in the audit trail beside the
	// operator's self-declared name: it is the identity the brokers
	// checked.
	KafkaUser string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Client reads, replays and audits one deployment's DLQ.
type Client struct {
	cfg   Config
	admCl *kgo.Client
	adm   *kadm.Client
}

// New returns a Client. It connects lazily.
func New(cfg Config) (*Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("dlq: no brokers")
	}
	if cfg.Topics.DLQ == "" || cfg.Topics.Audit == "" || cfg.Topics.Events == "" {
		return nil, errors.New("dlq: topic set has no events, DLQ or audit topic")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cl, err := kgo.NewClient(cfg.opts()...)
	if err != nil {
		return nil, fmt.Errorf("dlq: create kafka client for %v: %w", cfg.Brokers, err)
	}
	return &Client{cfg: cfg, admCl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client's connections.
func (c *Client) Close() { c.admCl.Close() }

func (cfg Config) opts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)
	return append(opts, extra...)
}

// Tenant is the tenant of the entry's pair: the event's, else its
// endpoint's.
func (c *Client) Tenant(e *Entry) string {
	if e.Tenant != "" || c.cfg.TenantOf == nil {
		return e.Tenant
	}
	return c.cfg.TenantOf(e.Endpoint())
}

// span is the offsets of a partition to read: [from, end).
type span struct{ from, end int64 }

// bounds returns, per partition of topic, its start offset and its last
// stable offset now: what a read_committed reader can read today.
func (c *Client) bounds(ctx context.Context, topic string) (map[int32]span, error) {
	// kadm answers from kgo's metadata cache, which can hold "unknown
	// topic" for seconds after a create; authorized operations bypass it.
	ctx = kadm.WithAuthorizedOps(ctx)
	starts, err := c.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) || (err == nil && len(starts[topic]) == 0) {
		return nil, fmt.Errorf("%w: %s (check --topic-prefix and --brokers)", ErrNoTopic, topic)
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := c.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := make(map[int32]span)
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		out[o.Partition] = span{from: max(s.Offset, 0), end: o.Offset}
	})
	return out, nil
}

// read streams the committed records of topic in each partition's span to
// fn, in offset order within a partition, partitions interleaved. It stops
// at the spans' ends even as the topic grows, and at the first error of fn.
func (c *Client) read(ctx context.Context, topic string, spans map[int32]span, fn func(*kgo.Record) error) error {
	offsets := make(map[int32]kgo.Offset)
	ends := make(map[int32]int64)
	for p, s := range spans {
		if s.from < s.end {
			offsets[p] = kgo.NewOffset().At(s.from)
			ends[p] = s.end
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	// Control records are kept so that a partition whose last record
	// before its end is a transaction marker still reaches its end.
	cl, err := kgo.NewClient(c.cfg.opts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxBytes/2),
		kgo.MaxConcurrentFetches(1),
	)...)
	if err != nil {
		return fmt.Errorf("create reader of %s: %w", topic, err)
	}
	defer cl.Close()
	idleSince := time.Now()
	for len(ends) > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, idlePoll)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var done []int32
		var stop error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if stop != nil || !ok {
				return
			}
			idleSince = time.Now()
			if r.Offset+1 >= end {
				delete(ends, r.Partition)
				done = append(done, r.Partition)
			}
			if r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			stop = fn(r)
		})
		if stop != nil {
			return stop
		}
		if time.Since(idleSince) >= idleLimit {
			// The last offsets before a partition's end can be aborted
			// records whose marker lies past the end: read_committed
			// never shows them. A partition idle that long with
			// nothing committed past its end has nothing more to show.
			now, err := c.bounds(ctx, topic)
			if err != nil {
				return err
			}
			for p, end := range ends {
				if now[p].end <= end {
					delete(ends, p)
					done = append(done, p)
				}
			}
			idleSince = time.Now()
		}
		if len(done) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{topic: done})
		}
	}
	return nil
}

// errLimit stops a read once a filter's limit is reached.
var errLimit = errors.New("limit reached")

// Scan streams the DLQ entries that pass f to fn, up to f.Limit, reading
// the DLQ as it is when Scan starts.
func (c *Client) Scan(ctx context.Context, f Filter, fn func(*Entry) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	spans, err := c.bounds(ctx, c.cfg.Topics.DLQ)
	if err != nil {
		return err
	}
	matched := 0
	err = c.read(ctx, c.cfg.Topics.DLQ, spans, func(r *kgo.Record) error {
		e := NewEntry(r)
		if !f.Match(e, c.Tenant(e)) {
			return nil
		}
		if err := fn(e); err != nil {
			return err
		}
		matched++
		if f.Limit > 0 && matched >= f.Limit {
			return errLimit
		}
		return nil
	})
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

var refRE = regexp.MustCompile(`^([0-9]+):([0-9]+)$`)

// Find returns the DLQ entries ref names: partition:offset names one
// record; anything else is an event id, which names every DLQ record of
// the event (one per endpoint that failed it, and one per time it was
// dead-lettered again after a replay). Nothing found is an error wrapping
// ErrNotFound.
func (c *Client) Find(ctx context.Context, ref string) ([]*Entry, error) {
	topic := c.cfg.Topics.DLQ
	if m := refRE.FindStringSubmatch(ref); m != nil {
		p, err1 := strconv.ParseInt(m[1], 10, 32)
		o, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s is not a partition:offset", ref)
		}
		spans, err := c.bounds(ctx, topic)
		if err != nil {
			return nil, err
		}
		s, ok := spans[int32(p)]
		if !ok || o < s.from || o >= s.end {
			return nil, fmt.Errorf("record %s: %w: %s partition %d holds offsets %d to %d", ref, ErrNotFound, topic, p, s.from, s.end-1)
		}
		var out []*Entry
		err = c.read(ctx, topic, map[int32]span{int32(p): {o, o + 1}}, func(r *kgo.Record) error {
			out = append(out, NewEntry(r))
			return nil
		})
		if err == nil && len(out) == 0 {
			// The offset holds a transaction marker or an aborted record.
			err = fmt.Errorf("record %s: %w: the offset holds no committed record", ref, ErrNotFound)
		}
		return out, err
	}
	if ref == "" {
		return nil, errors.New("empty event id")
	}
	var out []*Entry
	err := c.Scan(ctx, Filter{EventIDs: []string{ref}}, func(e *Entry) error {
		out = append(out, e)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("event %s: %w (topic %s)", ref, ErrNotFound, topic)
	}
	return out, err
}

// AgeBucket counts the entries dead-lettered between Min and Max ago.
type AgeBucket struct {
	Label string        `json:"label"`
	Min   time.Duration `json:"min_ns"`
	// Max is 0 for the last, open-ended bucket.
	Max   time.Duration `json:"max_ns"`
	Count int64         `json:"count"`
}

// Stats summarizes the DLQ entries that pass a filter.
type Stats struct {
	Total        int64            `json:"total"`
	ByEndpoint   map[string]int64 `json:"by_endpoint"`
	ByErrorClass map[string]int64 `json:"by_error_class"`
	ByAge        []AgeBucket      `json:"by_age"`
	Oldest       time.Time        `json:"oldest,omitzero"`
	Newest       time.Time        `json:"newest,omitzero"`
}

func newAgeBuckets() []AgeBucket {
	edges := []struct {
		label string
		max   time.Duration
	}{{"<1h", time.Hour}, {"1h-6h", 6 * time.Hour}, {"6h-24h", 24 * time.Hour}, {"1d-7d", 7 * 24 * time.Hour}, {">7d", 0}}
	out := make([]AgeBucket, len(edges))
	var lo time.Duration
	for i, e := range edges {
		out[i] = AgeBucket{Label: e.label, Min: lo, Max: e.max}
		lo = e.max
	}
	return out
}

// Add counts one entry, of age age.
func (s *Stats) Add(e *Entry, age time.Duration) {
	s.Total++
	s.ByEndpoint[e.Endpoint()]++
	s.ByErrorClass[string(e.State.LastClass)]++
	for i := range s.ByAge {
		if b := &s.ByAge[i]; b.Max == 0 || age < b.Max {
			b.Count++
			break
		}
	}
	at := e.DeadLetteredAt()
	if s.Oldest.IsZero() || at.Before(s.Oldest) {
		s.Oldest = at
	}
	if at.After(s.Newest) {
		s.Newest = at
	}
}

// Stats counts the entries that pass f by endpoint, error class and age.
func (c *Client) Stats(ctx context.Context, f Filter) (Stats, error) {
	s := Stats{ByEndpoint: map[string]int64{}, ByErrorClass: map[string]int64{}, ByAge: newAgeBuckets()}
	now := c.cfg.Now()
	err := c.Scan(ctx, f, func(e *Entry) error {
		s.Add(e, now.Sub(e.DeadLetteredAt()))
		return nil
	})
	return s, err
}
