package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/hookline/hookline/internal/dlq"
)

// dlqFilterFlags are the raw filter flags, parsed once Load has run.
type dlqFilterFlags struct {
	eventIDs, endpoints, tenants, types, classes, statuses, since, until string
	minAttempts, limit                                                   int
}

func (f *dlqFilterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.eventIDs, "event-id", "", "comma-separated event `ids`")
	fs.StringVar(&f.endpoints, "endpoint", "", "comma-separated endpoint `ids`")
	fs.StringVar(&f.tenants, "tenant", "", "comma-separated `tenants`")
	fs.StringVar(&f.types, "type", "", "comma-separated event `types`; a trailing * matches a prefix")
	fs.StringVar(&f.classes, "error-class", "", "comma-separated error `classes` of the last attempt")
	fs.StringVar(&f.statuses, "status", "", "comma-separated HTTP `statuses` of the last attempt: 503, 5xx, 0 for none")
	fs.StringVar(&f.since, "since", "", "dead-lettered at or after `time` (RFC 3339, date, or duration ago)")
	fs.StringVar(&f.until, "until", "", "dead-lettered before `time` (RFC 3339, date, or duration ago)")
	fs.IntVar(&f.minAttempts, "min-attempts", 0, "at least `n` attempts")
	fs.IntVar(&f.limit, "limit", 0, "stop after `n` matches (0: no limit)")
}

func (f *dlqFilterFlags) filter(now time.Time) (dlq.Filter, error) {
	out := dlq.Filter{
		EventIDs: splitComma(f.eventIDs), Endpoints: splitComma(f.endpoints), Tenants: splitComma(f.tenants),
		Types: splitComma(f.types), ErrorClasses: splitComma(f.classes), Statuses: splitComma(f.statuses),
		MinAttempts: f.minAttempts, Limit: f.limit,
	}
	var errs []error
	if f.since != "" {
		t, err := dlq.ParseTime(f.since, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (--since)", err))
		}
		out.Since = t
	}
	if f.until != "" {
		t, err := dlq.ParseTime(f.until, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (--until)", err))
		}
		out.Until = t
	}
	if err := errors.Join(errs...); err != nil {
		return dlq.Filter{}, err
	}
	return out, out.Validate()
}
