package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/dlq"
)

// The verbs of `hookline dlq`. What a replay may be is the dlq package's
// rule (dlq.ReplayOptions.Validate); the verbs only gather the options.

// noArgs refuses arguments: a dlq verb's flags go before its arguments,
// and only show takes one.
func noArgs(in invocation) error {
	if len(in.args) != 0 {
		return fmt.Errorf("dlq %s: unexpected argument %q (flags go before arguments)", in.verb, in.args[0])
	}
	return nil
}

// noArgsFilter is the start of a verb that takes no argument and selects
// entries with the filter flags.
func noArgsFilter(in invocation, o *dlqFlags) (dlq.Filter, error) {
	if err := noArgs(in); err != nil {
		return dlq.Filter{}, err
	}
	return o.filter.filter(time.Now())
}

// withDLQ connects, opens the DLQ client (with tenants read from the
// endpoints topic when tenants is set) and runs fn with buffered stdout.
func withDLQ(ctx context.Context, in invocation, tenants bool, fn func(d *dlq.Client, s *dlqSession, out *bufio.Writer) error) error {
	s, err := openDLQSession(in.cfg)
	if err != nil {
		return err
	}
	defer s.close()
	d, closeClient, err := s.client(ctx, in.cfg, tenants)
	if err != nil {
		return err
	}
	defer closeClient()
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	return errors.Join(fn(d, s, out), out.Flush())
}

// dlqList streams: one line (or JSON object) per entry as it is read, so
// memory stays flat however many there are.
func dlqList(ctx context.Context, in invocation, o *dlqFlags) error {
	f, err := noArgsFilter(in, o)
	if err != nil {
		return err
	}
	return withDLQ(ctx, in, true, func(d *dlq.Client, _ *dlqSession, out *bufio.Writer) error {
		enc := json.NewEncoder(out)
		if !o.asJSON {
			fmt.Fprint(out, listHeader)
		}
		n := 0
		err := d.Scan(ctx, f, func(e *dlq.Entry) error {
			n++
			s := e.Summary(d.Tenant(e))
			if o.asJSON {
				return enc.Encode(s)
			}
			writeListLine(out, s)
			return nil
		})
		if err != nil {
			return err
		}
		if !o.asJSON {
			fmt.Fprintf(out, "%d records\n", n)
		}
		return nil
	})
}

func dlqShow(ctx context.Context, in invocation, o *dlqFlags) error {
	if len(in.args) != 1 {
		return fmt.Errorf("dlq show: want exactly one <event-id | partition:offset> argument, got %d (flags go before the argument)", len(in.args))
	}
	return withDLQ(ctx, in, true, func(d *dlq.Client, _ *dlqSession, out *bufio.Writer) error {
		entries, err := d.Find(ctx, in.args[0])
		if err != nil {
			return err
		}
		history, closeHistory, err := attemptHistory(ctx, in.cfg)
		if err != nil {
			return err
		}
		defer closeHistory()
		for i, e := range entries {
			s := shownOf(d, e)
			if history != nil && e.EventID != "" {
				if s.History, err = history(e.EventID, e.Endpoint()); err != nil {
					s.HistoryErr = err.Error()
				}
			}
			if o.asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(s); err != nil {
					return err
				}
				continue
			}
			if i > 0 {
				fmt.Fprintln(out)
			}
			writeShown(out, e, s, history != nil)
		}
		return nil
	})
}

func dlqStats(ctx context.Context, in invocation, o *dlqFlags) error {
	f, err := noArgsFilter(in, o)
	if err != nil {
		return err
	}
	return withDLQ(ctx, in, true, func(d *dlq.Client, _ *dlqSession, out *bufio.Writer) error {
		s, err := d.Stats(ctx, f)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}
		writeStats(out, s)
		return nil
	})
}

func dlqReplays(ctx context.Context, in invocation, o *dlqFlags) error {
	if err := noArgs(in); err != nil {
		return err
	}
	return withDLQ(ctx, in, false, func(d *dlq.Client, _ *dlqSession, out *bufio.Writer) error {
		rs, err := d.Replays(ctx)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(out)
			for _, r := range rs {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}
		writeReplays(out, rs)
		return nil
	})
}

// dlqReplay is replay and skip (whose target is dlq.TargetSkip).
func dlqReplay(ctx context.Context, in invocation, o *dlqFlags) error {
	f, err := noArgsFilter(in, o)
	if err != nil {
		return err
	}
	// replay offers events and retry; skip is a verb of its own.
	if in.verb == "replay" && o.to != "" && o.to != string(dlq.TargetEvents) && o.to != string(dlq.TargetRetry) {
		return fmt.Errorf("--to: want events or retry, got %q", o.to)
	}
	ro := dlq.ReplayOptions{
		ID: o.replayID, Operator: o.operator, Target: dlq.Target(o.to), Filter: f, DryRun: o.dryRun, Rate: o.rate,
	}
	if ro.ID == "" {
		ro.ID = dlq.NewReplayID(time.Now())
	}
	if err := ro.Validate(); err != nil {
		return err
	}
	return withDLQ(ctx, in, true, func(d *dlq.Client, _ *dlqSession, out *bufio.Writer) error {
		err := runReplay(ctx, d, ro, out)
		if in.cfg.ClickHouse != "" && !ro.DryRun {
			err = errors.Join(err, auditToClickHouse(ctx, in.cfg, d, ro.ID))
		}
		return err
	})
}

// runReplay runs the replay: a dry run lists what it would send, a real
// one draws its progress on stderr.
func runReplay(ctx context.Context, d *dlq.Client, o dlq.ReplayOptions, out *bufio.Writer) error {
	if o.DryRun {
		fmt.Fprint(out, listHeader)
		o.OnMatch = func(e *dlq.Entry) { writeListLine(out, e.Summary(d.Tenant(e))) }
	} else {
		p := newProgressView(os.Stderr)
		o.Progress = p.update
		defer p.finish()
	}
	res, err := d.Replay(ctx, o)
	if err != nil {
		return err
	}
	writeReplayResult(out, res)
	return nil
}

func dlqHeld(ctx context.Context, in invocation, o *dlqFlags) error {
	if err := noArgs(in); err != nil {
		return err
	}
	s, err := openDLQSession(in.cfg)
	if err != nil {
		return err
	}
	defer s.close()
	return printHeld(ctx, append([]kgo.Opt{kgo.SeedBrokers(s.seeds...)}, s.secure...), s.topics, splitComma(o.filter.endpoints), o.asJSON)
}

func dlqGenerate(ctx context.Context, in invocation, o *dlqFlags) error {
	if err := noArgs(in); err != nil {
		return err
	}
	return withDLQ(ctx, in, false, func(d *dlq.Client, s *dlqSession, out *bufio.Writer) error {
		start := time.Now()
		if err := d.Generate(ctx, o.count); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %d records to %s in %v\n", o.count, s.topics.DLQ, time.Since(start).Round(time.Millisecond))
		return nil
	})
}
