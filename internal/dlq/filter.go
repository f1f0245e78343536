package dlq

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/processors"
)

// ErrBadFilter wraps every filter validation error.
var ErrBadFilter = errors.New("bad filter")

// Filter selects DLQ entries. Every set criterion must hold; a list matches
// when any of its values does. The zero Filter matches everything.
type Filter struct {
	EventIDs  []string `json:"event_ids,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"`
	// Tenants match the event's tenant or, for an event addressed to an
	// endpoint directly, the endpoint's tenant.
	Tenants []string `json:"tenants,omitempty"`
	// Types are event types; a trailing * matches a prefix.
	Types        []string `json:"types,omitempty"`
	ErrorClasses []string `json:"error_classes,omitempty"`
	// Statuses are HTTP statuses of the last attempt: "503", a class such
	// as "5xx", or "0" for no response.
	Statuses []string `json:"statuses,omitempty"`
	// Since and Until bound when the pair was dead-lettered: Since
	// inclusive, Until exclusive.
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	MinAttempts int       `json:"min_attempts,omitempty"`
	// Limit stops after that many matches; 0 is no limit.
	Limit int `json:"limit,omitempty"`
}

// Validate reports every malformed criterion, naming its flag.
func (f Filter) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: --%s: %s", ErrBadFilter, flag, fmt.Sprintf(format, args...)))
	}
	for _, c := range f.ErrorClasses {
		if !processors.KnownClass(processors.ErrorClass(c)) {
			known := make([]string, len(processors.ErrorClasses))
			for i, k := range processors.ErrorClasses {
				known[i] = string(k.Class)
			}
			bad("error-class", "unknown error class %q (known: %s)", c, strings.Join(known, ", "))
		}
	}
	for _, s := range f.Statuses {
		if _, _, err := statusRange(s); err != nil {
			bad("status", "%v", err)
		}
	}
	for _, t := range f.Types {
		if i := strings.IndexByte(t, '*'); i >= 0 && i != len(t)-1 {
			bad("type", "%q: * may only end a type prefix", t)
		}
	}
	if f.MinAttempts < 0 {
		bad("min-attempts", "must not be negative, got %d", f.MinAttempts)
	}
	if f.Limit < 0 {
		bad("limit", "must not be negative, got %d", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		bad("until", "%s is not after --since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return errors.Join(errs...)
}

// IsZero reports whether f selects every entry.
func (f Filter) IsZero() bool {
	return len(f.EventIDs) == 0 && len(f.Endpoints) == 0 && len(f.Tenants) == 0 && len(f.Types) == 0 &&
		len(f.ErrorClasses) == 0 && len(f.Statuses) == 0 && f.Since.IsZero() && f.Until.IsZero() &&
		f.MinAttempts == 0 && f.Limit == 0
}

// Equal reports whether f and g select the same entries.
func (f Filter) Equal(g Filter) bool {
	return slices.Equal(f.EventIDs, g.EventIDs) && slices.Equal(f.Endpoints, g.Endpoints) &&
		slices.Equal(f.Tenants, g.Tenants) && slices.Equal(f.Types, g.Types) &&
		slices.Equal(f.ErrorClasses, g.ErrorClasses) && slices.Equal(f.Statuses, g.Statuses) &&
		f.Since.Equal(g.Since) && f.Until.Equal(g.Until) && f.MinAttempts == g.MinAttempts && f.Limit == g.Limit
}

// String describes f for people, in flag syntax.
func (f Filter) String() string {
	var parts []string
	add := func(flag string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, "--"+flag+"="+strings.Join(vs, ","))
		}
	}
	add("event-id", f.EventIDs)
	add("endpoint", f.Endpoints)
	add("tenant", f.Tenants)
	add("type", f.Types)
	add("error-class", f.ErrorClasses)
	add("status", f.Statuses)
	if !f.Since.IsZero() {
		parts = append(parts, "--since="+f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "--until="+f.Until.UTC().Format(time.RFC3339))
	}
	if f.MinAttempts > 0 {
		parts = append(parts, "--min-attempts="+strconv.Itoa(f.MinAttempts))
	}
	if f.Limit > 0 {
		parts = append(parts, "--limit="+strconv.Itoa(f.Limit))
	}
	if len(parts) == 0 {
		return "(all)"
	}
	return strings.Join(parts, " ")
}

// Match reports whether the entry, whose pair belongs to tenant, passes
// every criterion but Limit.
func (f Filter) Match(e *Entry, tenant string) bool {
	switch {
	case len(f.EventIDs) > 0 && !slices.Contains(f.EventIDs, e.EventID):
		return false
	case len(f.Endpoints) > 0 && !slices.Contains(f.Endpoints, e.Endpoint()):
		return false
	case len(f.Tenants) > 0 && !slices.Contains(f.Tenants, tenant):
		return false
	case len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool { return typeMatches(t, e.EventType) }):
		return false
	case len(f.ErrorClasses) > 0 && !slices.Contains(f.ErrorClasses, string(e.State.LastClass)):
		return false
	case len(f.Statuses) > 0 && !slices.ContainsFunc(f.Statuses, func(s string) bool { return statusMatches(s, e.State.LastStatus) }):
		return false
	case e.State.Attempts < f.MinAttempts:
		return false
	}
	at := e.DeadLetteredAt()
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	return true
}

func typeMatches(pattern, t string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(t, p)
	}
	return pattern == t
}

func statusMatches(s string, status int) bool {
	lo, hi, err := statusRange(s)
	return err == nil && status >= lo && status <= hi
}

// statusRange reads "503" as [503,503] and "5xx" as [500,599].
func statusRange(s string) (lo, hi int, err error) {
	if len(s) == 3 && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') && s[0] >= '1' && s[0] <= '5' {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || (n != 0 && (n < 100 || n > 599)) {
		return 0, 0, fmt.Errorf("%q is not an HTTP status (100-599), a class such as 5xx, or 0 for no response", s)
	}
	return n, n, nil
}

// ParseTime reads a --since or --until value: an RFC 3339 time, a date
// (YYYY-MM-DD, UTC midnight), or a Go duration meaning that long before now
// ("2h" is two hours ago).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time: want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (90m)", ErrBadFilter, s)
}
