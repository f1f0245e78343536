package dlq

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Target is where a replay sends records.
type Target string

// Replay targets.
const (
	// TargetEvents re-enters each pair as a new event addressed to its
	// endpoint, through the events topic.
	TargetEvents Target = "events"
	// TargetRetry puts each pair in the first retry tier, due at once,
	// with a fresh retry state.
	TargetRetry Target = "retry"
	// TargetSkip releases the keys the matching pairs hold at a strict
	// endpoint with on_dead_letter hold, without delivering them (hookline
	// dlq skip). A pair that holds no key is skipped, not sent.
	TargetSkip Target = "skip"
)

// Defaults of ReplayOptions.
const (
	DefaultBatchSize      = 500
	DefaultCommitInterval = time.Second
)

// ErrReplayMismatch is returned when a replay is resumed with other
// settings than it was started with.
var ErrReplayMismatch = errors.New("replay id already used with other settings")

var replayIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// MaxOperatorLen bounds the operator name of a replay.
const MaxOperatorLen = 128

// CheckOperator checks a replay's operator name: 1 to MaxOperatorLen bytes
// of printable characters, no leading or trailing space. It is printed in
// audit listings and stored in ClickHouse, so control characters (terminal
// escapes, newlines that forge lines) and invisible ones are refused.
func CheckOperator(op string) error {
	switch {
	case op == "":
		return errors.New("is empty")
	case len(op) > MaxOperatorLen:
		return fmt.Errorf("is longer than %d bytes", MaxOperatorLen)
	case !utf8.ValidString(op):
		return errors.New("is not valid UTF-8")
	case strings.TrimSpace(op) != op:
		return errors.New("has leading or trailing space")
	case strings.ContainsFunc(op, func(r rune) bool { return !unicode.IsPrint(r) }):
		return errors.New("may contain only printable characters")
	}
	return nil
}

// ReplayOptions configure a replay.
type ReplayOptions struct {
	// ID names the replay. A replay run again with an ID found in the
	// audit topic resumes where it stopped. Empty generates one.
	ID string
	// Operator is who runs the replay, for the audit trail; required. It
	// is self-declared: 1 to MaxOperatorLen printable characters (see
	// CheckOperator). The audit trail also records Config.KafkaUser.
	Operator string
	// Target defaults to TargetEvents, or to the stored target on resume.
	Target Target
	// Filter selects what to replay. On resume, a zero Filter means the
	// stored one; another is an error unless it is equal.
	Filter Filter
	// DryRun reports what would be sent and sends and records nothing.
	DryRun bool
	// Rate caps records sent per second; 0 is no cap.
	Rate float64
	// BatchSize caps the records of one transaction; default
	// DefaultBatchSize.
	BatchSize int
	// CommitInterval caps how long a transaction stays open; default
	// DefaultCommitInterval.
	CommitInterval time.Duration
	// OnMatch, if set, is called with every matching entry before it is
	// sent (or, in a dry run, instead).
	OnMatch func(*Entry)
	// Progress, if set, is called after every record sent, every commit
	// and every 1024 records read. It must be quick.
	Progress func(Progress)
}

// Progress is how far a replay run is.
type Progress struct {
	ReplayID string
	// Total is the DLQ records this run reads; Scanned, how many it has.
	Total   int64
	Scanned int64
	// Matched, Sent, Committed and Skipped count over every run of the
	// replay. Sent includes the open transaction; Committed does not.
	Matched   int64
	Sent      int64
	Committed int64
	Skipped   int64
	Elapsed   time.Duration
}

// ReplayResult is what a replay run did.
type ReplayResult struct {
	ReplayID string
	Target   Target
	// Topic is the topic replayed into.
	Topic  string
	Filter Filter
	DryRun bool
	// Resumed is set when the run continued an earlier one.
	Resumed bool
	// AlreadyCompleted is set when the replay had completed before: the
	// run sent nothing.
	AlreadyCompleted bool
	// Counts over every run; for a dry run, what this run would send.
	Matched, Sent, Skipped int64
	Outcome                Outcome
}

// NewReplayID returns a fresh replay id: r-<UTC time>-<random>.
func NewReplayID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return "r-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Validate reports what makes o unfit for a replay; Replay refuses the same.
// Call it to refuse bad options before connecting. An empty ID is fine:
// Replay generates one.
func (o ReplayOptions) Validate() error {
	switch {
	case o.ID != "" && !replayIDRE.MatchString(o.ID):
		return fmt.Errorf("replay id %q: use 1 to 128 letters, digits, '.', '_' or '-'", o.ID)
	case o.Operator == "":
		return errors.New("replay: the operator is required for the audit trail (--operator, or $USER)")
	case CheckOperator(o.Operator) != nil:
		return fmt.Errorf("replay: operator %q: %w", o.Operator, CheckOperator(o.Operator))
	case o.Target != "" && o.Target != TargetEvents && o.Target != TargetRetry && o.Target != TargetSkip:
		return fmt.Errorf("replay: target %q: want %q, %q or %q", o.Target, TargetEvents, TargetRetry, TargetSkip)
	case !(o.Rate >= 0):
		return fmt.Errorf("replay: rate must not be negative, got %v", o.Rate)
	case o.BatchSize < 0 || o.CommitInterval < 0:
		return errors.New("replay: batch size and commit interval must not be negative")
	}
	return o.Filter.Validate()
}
