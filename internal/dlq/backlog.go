package dlq

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/processors"
)

// Backlog follows the DLQ and the replay audit trail and tells how many
// dead-lettered records still wait for an operator: those no replay has
// sent or skipped. The DLQ is append-only, so its offsets say nothing about
// that; the audit trail does: a replay has dealt with every record of a
// partition below its next offset there that its filter matches.
//
// Both topics are read from their start, so the figures survive restarts of
// the process that keeps them and every process computes the same ones.
type Backlog struct {
	c *Client

	mu        sync.Mutex
	dlqNext   map[int32]int64
	auditNext map[int32]int64
	// waiting holds, per partition and offset, what a filter reads of
	// the DLQ entries no replay covers yet.
	waiting map[int32]map[int64]waitingEntry
	// replays is the latest audit record of each replay of this DLQ.
	replays      map[string]AuditRecord
	deadLettered int64
	synced       bool
}

// BacklogCounts are a Backlog's figures.
type BacklogCounts struct {
	// Waiting is the number of DLQ records no replay has sent or skipped.
	Waiting int64
	// DeadLettered is the number of committed records in the DLQ topic.
	DeadLettered int64
	// Replayed and ReplaySkipped are the records every replay of the DLQ
	// sent, and matched but could not send (Sent and Skipped of the
	// replays' latest audit records).
	Replayed      int64
	ReplaySkipped int64
}

// NewBacklog returns a backlog of the client's DLQ; Refresh fills it.
func (c *Client) NewBacklog() *Backlog {
	return &Backlog{
		c:         c,
		dlqNext:   make(map[int32]int64),
		auditNext: make(map[int32]int64),
		waiting:   make(map[int32]map[int64]waitingEntry),
		replays:   make(map[string]AuditRecord),
	}
}

// Counts returns the figures, and false until a first Refresh has read
// both topics to their ends (partial figures would look like a drop).
func (b *Backlog) Counts() (BacklogCounts, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n BacklogCounts
	for _, offs := range b.waiting {
		n.Waiting += int64(len(offs))
	}
	n.DeadLettered = b.deadLettered
	for _, a := range b.replays {
		n.Replayed += a.Sent
		n.ReplaySkipped += a.Skipped
	}
	return n, b.synced
}

// Refresh reads what the DLQ and the audit topic gained since the last
// call, up to their ends now.
func (b *Backlog) Refresh(ctx context.Context) error {
	dlqTopic := b.c.cfg.Topics.DLQ
	dlqSpans, err := b.spans(ctx, dlqTopic, b.dlqNext)
	if err != nil {
		return err
	}
	err = b.c.read(ctx, dlqTopic, dlqSpans, func(r *kgo.Record) error {
		e := NewEntry(r)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.deadLettered++
		for _, a := range b.replays {
			if b.covers(&a, e) {
				return nil
			}
		}
		offs := b.waiting[e.Partition]
		if offs == nil {
			offs = make(map[int64]waitingEntry)
			b.waiting[e.Partition] = offs
		}
		offs[e.Offset] = newWaitingEntry(e)
		return nil
	})
	if err != nil {
		return err
	}
	b.advance(b.dlqNext, dlqSpans)

	auditSpans, err := b.spans(ctx, b.c.cfg.Topics.Audit, b.auditNext)
	if err != nil {
		return err
	}
	err = b.c.read(ctx, b.c.cfg.Topics.Audit, auditSpans, func(r *kgo.Record) error {
		a, err := decodeAudit(r)
		if err != nil || a.DLQTopic != dlqTopic {
			return nil
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		prior := b.replays[a.ReplayID]
		b.replays[a.ReplayID] = a.clone()
		// Entries below the replay's previous next offsets were checked
		// against it already, when it or they arrived.
		for p, offs := range b.waiting {
			lo, hi := prior.Next[p], a.Next[p]
			if hi-lo > int64(len(offs)) {
				for off, w := range offs {
					if off >= lo && b.covers(&a, w.entry(p, off)) {
						delete(offs, off)
					}
				}
				continue
			}
			for off := lo; off < hi; off++ {
				if w, ok := offs[off]; ok && b.covers(&a, w.entry(p, off)) {
					delete(offs, off)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.advance(b.auditNext, auditSpans)
	b.mu.Lock()
	b.synced = true
	b.mu.Unlock()
	return nil
}

// covers reports whether replay a has sent or skipped entry e.
func (b *Backlog) covers(a *AuditRecord, e *Entry) bool {
	return e.Offset < a.Next[e.Partition] && a.Filter.Match(e, b.c.Tenant(e))
}

// spans are the offsets of topic from next (or the start) to the end now.
// A topic that does not exist yet has none.
func (b *Backlog) spans(ctx context.Context, topic string, next map[int32]int64) (map[int32]span, error) {
	spans, err := b.c.bounds(ctx, topic)
	if err != nil {
		if errors.Is(err, ErrNoTopic) {
			return nil, nil
		}
		return nil, err
	}
	for p, s := range spans {
		if n, ok := next[p]; ok && n > s.from {
			s.from = n
			spans[p] = s
		}
	}
	return spans, nil
}

// advance moves next to the spans' ends: read has seen everything below
// them, as the ends are last stable offsets.
func (b *Backlog) advance(next map[int32]int64, spans map[int32]span) {
	for p, s := range spans {
		if s.end > next[p] {
			next[p] = s.end
		}
	}
}

// waitingEntry is what Filter.Match reads of an Entry: a waiting record
// costs about a third of a whole Entry without its payload.
type waitingEntry struct {
	eventID, eventType, tenant, endpoint string
	class                                processors.ErrorClass
	status, attempts                     int
	at                                   time.Time
}

func newWaitingEntry(e *Entry) waitingEntry {
	return waitingEntry{
		eventID: e.EventID, eventType: e.EventType, tenant: e.Tenant, endpoint: e.Endpoint(),
		class: e.State.LastClass, status: e.State.LastStatus, attempts: e.State.Attempts, at: e.DeadLetteredAt(),
	}
}

// entry rebuilds an Entry that every filter judges as it judged the
// original.
func (w waitingEntry) entry(p int32, off int64) *Entry {
	return &Entry{
		Partition: p, Offset: off, Timestamp: w.at,
		EventID: w.eventID, EventType: w.eventType, Tenant: w.tenant, EventEndpoint: w.endpoint,
		State: processors.RetryState{EndpointID: w.endpoint, LastClass: w.class, LastStatus: w.status, Attempts: w.attempts, Entered: w.at},
	}
}
