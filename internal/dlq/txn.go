package dlq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txn is one transaction at a time of a transactional producer.
type txn struct {
	cl   *kgo.Client
	open bool
	// began is when the open transaction began, else the last commit.
	began   time.Time
	pending int

	mu  sync.Mutex
	err error
}

func (t *txn) produce(ctx context.Context, rec *kgo.Record) error {
	if !t.open {
		if err := t.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		t.open, t.began, t.pending = true, time.Now(), 0
	}
	t.pending++
	t.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
		if err != nil {
			t.mu.Lock()
			if t.err == nil {
				t.err = fmt.Errorf("produce to %s partition %d: %w", r.Topic, r.Partition, err)
			}
			t.mu.Unlock()
		}
	})
	return nil
}

func (t *txn) commit(ctx context.Context) error {
	if !t.open {
		return nil
	}
	err := t.cl.Flush(ctx)
	t.mu.Lock()
	if t.err != nil {
		err = t.err
	}
	t.mu.Unlock()
	if err == nil {
		err = t.cl.EndTransaction(ctx, kgo.TryCommit)
		if err == nil {
			// began now times the commit interval from this commit.
			t.open, t.began = false, time.Now()
			return nil
		}
		err = fmt.Errorf("commit transaction: %w", err)
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := t.abort(bg); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

func (t *txn) abort(ctx context.Context) error {
	if !t.open {
		return nil
	}
	t.open = false
	defer func() {
		t.mu.Lock()
		t.err = nil
		t.mu.Unlock()
	}()
	if err := t.cl.AbortBufferedRecords(ctx); err != nil {
		return fmt.Errorf("abort buffered records: %w", err)
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("abort transaction: %w", err)
	}
	return nil
}
