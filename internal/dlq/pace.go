package dlq

import (
	"context"
	"time"
)

// pacer spaces sends at most rate per second apart. It allows no burst: a
// run that falls behind (a slow broker) does not catch up later, so the rate
// is a ceiling over any window, not only on average.
type pacer struct {
	interval time.Duration
	next     time.Time
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
}

// newPacer returns a pacer for rate sends per second; rate <= 0 is no limit.
func newPacer(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *pacer {
	p := &pacer{now: now, sleep: sleep}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// Delay is how long the next Wait would block.
func (p *pacer) Delay() time.Duration {
	if p.interval == 0 {
		return 0
	}
	return max(p.next.Sub(p.now()), 0)
}

// Wait blocks until the next send may go.
func (p *pacer) Wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	now := p.now()
	if p.next.Before(now) {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
	p.next = p.next.Add(p.interval)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
