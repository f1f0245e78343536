package processors

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookline/hookline/internal/endpoints"
)

// InFlightRecheck is how soon a delivery refused by an endpoint's
// max_in_flight asks again. Requests finish on other partitions and stages
// too, so there is no one completion to wait for.
const InFlightRecheck = 5 * time.Millisecond

// Protection enforces each endpoint's rate_limit and max_in_flight in this
// process, for every stage and partition together. Its Admit is the
// pipeline runner's Admit: a refused delivery waits in its lane without an
// attempt, and other endpoints' lanes go on. It is safe for concurrent use;
// time is passed in.
type Protection struct {
	lookup endpoints.Lookup

	mu     sync.Mutex
	guards map[string]*guard
}

type guard struct {
	rate     int // the limiter's rate_limit, to notice a change
	limiter  *rate.Limiter
	inFlight int
}

// NewProtection enforces the limits lookup gives each endpoint.
func NewProtection(lookup endpoints.Lookup) *Protection {
	return &Protection{lookup: lookup, guards: make(map[string]*guard)}
}

// Admit reports whether a request to the endpoint may start at now. When
// it may, release must be called once the request is done (it gives back
// the in-flight slot; it may be nil). When it may not, retry is when to ask
// again. An endpoint that does not exist or sets no limit is always
// admitted: the delivery stage deals with it.
func (p *Protection) Admit(endpointID string, now time.Time) (release func(), retry time.Time, ok bool) {
	ep, found := p.lookup.Get(endpointID)
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.guards[endpointID]
	if !found || (ep.RateLimit == 0 && ep.MaxInFlight == 0) {
		if g != nil && g.inFlight == 0 {
			delete(p.guards, endpointID)
		}
		return nil, time.Time{}, true
	}
	if g == nil {
		g = &guard{}
		p.guards[endpointID] = g
	}
	if ep.MaxInFlight > 0 && g.inFlight >= ep.MaxInFlight {
		return nil, now.Add(InFlightRecheck), false
	}
	switch {
	case ep.RateLimit == 0:
		g.rate, g.limiter = 0, nil
	case g.limiter == nil || g.rate != ep.RateLimit:
		g.rate = ep.RateLimit
		// One request of the documented burst is kept in reserve for
		// the jitter between admission here and arrival at the
		// receiver (endpoints.RateBurst).
		bucket := endpoints.RateBucket(ep.RateLimit)
		g.limiter = rate.NewLimiter(rate.Limit(ep.RateLimit), bucket)
		// A new limiter starts empty: the burst is earned by idleness,
		// not handed to every process that starts or sees a new limit.
		g.limiter.ReserveN(now, bucket)
	}
	if g.limiter != nil {
		r := g.limiter.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return nil, now.Add(d), false
		}
	}
	g.inFlight++
	return func() { p.mu.Lock(); g.inFlight--; p.mu.Unlock() }, time.Time{}, true
}
