package endpoints

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNotFound is returned for an endpoint id the registry does not hold.
var ErrNotFound = errors.New("endpoint not found")

// ErrExists is returned by Create for an endpoint id that is already taken.
var ErrExists = errors.New("endpoint already exists")

// Registry is the in-memory view of the endpoints topic, and the way to
// change it. It implements Lookup and is safe for concurrent use.
//
// Writes are last-writer-wins across processes; within one process Create,
// Update, Disable and Delete are serialized, so a read-modify-write here
// never loses a concurrent change made here.
type Registry struct {
	cl     *kgo.Client
	topic  string
	logger *slog.Logger

	writeMu sync.Mutex // serializes this process's read-modify-write cycles

	box *SecretBox // nil: secrets are written in plaintext

	mu   sync.RWMutex
	eps  map[string]Endpoint
	seen map[string]position // last applied record per id, tombstones included

	running   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	stopped   chan struct{}
	runErr    error // set before stopped is closed
}

// position orders the records of one key: a key always lands on the same
// partition, so offsets within it say which record is newer.
type position struct {
	partition int32
	offset    int64
}

// NewRegistry returns a registry of the endpoints in topic (one partition,
// compacted; see the topics package).
//
// cl must be a client without a consumer group that nothing else polls: the
// registry produces with it (it must keep the default acks=all) and, in Run,
// consumes topic with it directly from the start. Producing to other topics
// with the same client is fine.
func NewRegistry(cl *kgo.Client, topic string, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		cl:      cl,
		topic:   topic,
		logger:  logger,
		eps:     make(map[string]Endpoint),
		seen:    make(map[string]position),
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// UseSecretBox makes the registry encrypt secrets with box when it writes
// and decrypt them when it reads. Call it before Run and before any write.
// Without it, secrets are written in plaintext and encrypted ones stay
// encrypted (their endpoints cannot sign).
func (r *Registry) UseSecretBox(box *SecretBox) { r.box = box }

// Run reads the endpoints topic from the start and then tails it, applying
// every change, until ctx is done; then it returns nil. It returns an error
// if the topic cannot be read at all (for example it does not exist). Run
// may be called once.
func (r *Registry) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("endpoints registry: Run called twice")
	}
	err := r.run(ctx)
	r.runErr = err
	close(r.stopped)
	return err
}

func (r *Registry) run(ctx context.Context) error {
	ends, err := kadm.NewClient(r.cl).ListEndOffsets(ctx, r.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("list end offsets of endpoints topic %s: %w", r.topic, err)
	}
	start := make(map[int32]kgo.Offset)
	pending := make(map[int32]int64) // partition -> end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		start[o.Partition] = kgo.NewOffset().AtStart()
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	if len(start) == 0 {
		return fmt.Errorf("endpoints topic %s has no partitions", r.topic)
	}
	if len(pending) == 0 {
		r.markReady()
	}

	r.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: start})
	defer r.cl.PurgeTopicsFromConsuming(r.topic)

	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return fmt.Errorf("tail endpoints topic %s: %w", r.topic, kgo.ErrClientClosed)
		}
		fs.EachError(func(topic string, partition int32, err error) {
			r.logger.Warn("fetch endpoints topic", "topic", topic, "partition", partition, "err", err)
		})
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Topic != r.topic {
				return
			}
			r.apply(rec)
			if end, ok := pending[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(pending, rec.Partition)
				if len(pending) == 0 {
					r.markReady()
					r.logger.Info("endpoints registry ready", "topic", r.topic, "endpoints", r.count())
				}
			}
		})
	}
}

func (r *Registry) markReady() { r.readyOnce.Do(func() { close(r.ready) }) }

func (r *Registry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.eps)
}

// WaitReady returns once Run has read the topic up to its end offsets as of
// Run's start, so every endpoint written before is visible. It returns an
// error if ctx ends first or Run stops before that.
func (r *Registry) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for endpoints registry: %w", ctx.Err())
	case <-r.stopped:
		select {
		case <-r.ready:
			return nil
		default:
		}
		if r.runErr != nil {
			return fmt.Errorf("endpoints registry stopped before it was ready: %w", r.runErr)
		}
		return errors.New("endpoints registry stopped before it was ready")
	}
}

// apply makes a record of the endpoints topic the current state of its id,
// unless a newer record of that id was applied already (Put applies its own
// record before Run reads it back).
func (r *Registry) apply(rec *kgo.Record) {
	id := string(rec.Key)
	if id == "" {
		r.logger.Warn("skip endpoints record without key", "partition", rec.Partition, "offset", rec.Offset)
		return
	}
	var e Endpoint
	if rec.Value != nil {
		if err := json.Unmarshal(rec.Value, &e); err != nil {
			r.logger.Warn("skip malformed endpoints record", "endpoint", id, "partition", rec.Partition, "offset", rec.Offset, "err", err)
			return
		}
		e.ID = id // the key is what compaction keeps apart, so it wins
		if err := r.box.open(&e); err != nil {
			// The error names the endpoint and key id, never the secret.
			r.logger.Warn("endpoint secret not decrypted; the endpoint cannot sign until a matching secret_key is configured", "endpoint", id, "err", err)
		}
	}
	pos := position{rec.Partition, rec.Offset}

	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.seen[id]; ok && last.partition == pos.partition && last.offset >= pos.offset {
		return
	}
	r.seen[id] = pos
	if rec.Value == nil {
		delete(r.eps, id)
		return
	}
	r.eps[id] = e
}

// Get returns the endpoint with the id, enabled or not.
func (r *Registry) Get(id string) (Endpoint, bool) {
	r.mu.RLock()
	e, ok := r.eps[id]
	r.mu.RUnlock()
	return e.clone(), ok
}

// ByTenant returns the enabled endpoints of a tenant that accept the event
// type, sorted by id.
func (r *Registry) ByTenant(tenant, eventType string) []Endpoint {
	r.mu.RLock()
	var out []Endpoint
	for _, e := range r.eps {
		if e.Enabled && e.Tenant == tenant && e.Accepts(eventType) {
			out = append(out, e.clone())
		}
	}
	r.mu.RUnlock()
	sortByID(out)
	return out
}

// List returns every endpoint, sorted by id. Secrets are not masked.
func (r *Registry) List() []Endpoint {
	r.mu.RLock()
	out := make([]Endpoint, 0, len(r.eps))
	for _, e := range r.eps {
		out = append(out, e.clone())
	}
	r.mu.RUnlock()
	sortByID(out)
	return out
}

func sortByID(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
}

// Put validates the endpoint and writes it, creating or replacing it. It
// returns once Kafka has acknowledged the write, and the endpoint is visible
// to Get at once. CreatedAt is kept from the current version when unset;
// UpdatedAt is set to now.
func (r *Registry) Put(ctx context.Context, e Endpoint) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.put(ctx, e)
}

// Create is Put for a new endpoint: it returns ErrExists if the id is taken
// (as far as this process has seen).
func (r *Registry) Create(ctx context.Context, e Endpoint) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if _, ok := r.Get(e.ID); ok {
		return fmt.Errorf("create endpoint %s: %w", e.ID, ErrExists)
	}
	return r.put(ctx, e)
}

// Update applies change to the current version of the endpoint and writes
// the result. It returns ErrNotFound for an unknown id, and change's error
// (nothing is written then).
func (r *Registry) Update(ctx context.Context, id string, change func(*Endpoint) error) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	e, ok := r.Get(id)
	if !ok {
		return fmt.Errorf("update endpoint %s: %w", id, ErrNotFound)
	}
	if err := change(&e); err != nil {
		return err
	}
	e.ID = id
	return r.put(ctx, e)
}

// Disable turns an endpoint off, recording why (for example "HTTP 410 Gone").
func (r *Registry) Disable(ctx context.Context, id, reason string) error {
	return r.Update(ctx, id, func(e *Endpoint) error {
		e.Disable(reason)
		return nil
	})
}

// Delete writes a tombstone for the endpoint. It returns ErrNotFound if the
// id is unknown.
func (r *Registry) Delete(ctx context.Context, id string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if _, ok := r.Get(id); !ok {
		return fmt.Errorf("delete endpoint %s: %w", id, ErrNotFound)
	}
	if err := r.produce(ctx, &kgo.Record{Topic: r.topic, Key: []byte(id)}); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	return nil
}

func (r *Registry) put(ctx context.Context, e Endpoint) error {
	if err := e.Validate(); err != nil {
		return err
	}
	now := time.Now().UTC()
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
		if old, ok := r.Get(e.ID); ok {
			e.CreatedAt = old.CreatedAt
		}
	}
	e.UpdatedAt = now
	e.PruneRetired(now)
	sealed, err := r.box.seal(e)
	if err != nil {
		return err
	}
	value, err := json.Marshal(sealed)
	if err != nil {
		return fmt.Errorf("encode endpoint %s: %w", e.ID, err)
	}
	if err := r.produce(ctx, &kgo.Record{Topic: r.topic, Key: []byte(e.ID), Value: value}); err != nil {
		return fmt.Errorf("write endpoint %s: %w", e.ID, err)
	}
	return nil
}

// produce writes a record synchronously and applies it locally, so a read
// right after a write sees it even before Run reads it back.
func (r *Registry) produce(ctx context.Context, rec *kgo.Record) error {
	if acks, _ := r.cl.OptValue(kgo.RequiredAcks).(kgo.Acks); acks != kgo.AllISRAcks() {
		return errors.New("the endpoints registry client must produce with acks=all")
	}
	if err := r.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return err
	}
	r.apply(rec)
	return nil
}
