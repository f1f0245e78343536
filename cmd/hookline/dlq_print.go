package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/dlq"
)

// How `hookline dlq` prints entries, stats and the audit trail as text.

const listHeader = "EVENT ID                  ENDPOINT          TENANT        TYPE                  ATT  FIRST ATTEMPT         LAST ATTEMPT          STATUS  ERROR CLASS         PARTITION:OFFSET\n"

func writeListLine(w io.Writer, s dlq.Summary) {
	event := s.EventID
	if s.Malformed != "" && event == "" {
		event = "(malformed)"
	}
	fmt.Fprintf(w, "%-24s  %-16s  %-12s  %-20s  %3d  %-20s  %-20s  %6d  %-18s  %d:%d\n",
		printable(event), dash(s.Endpoint), dash(s.Tenant), dash(s.Type), s.Attempts, stamp(s.FirstAttempt), stamp(s.LastAttempt),
		s.LastStatus, dash(s.ErrorClass), s.Partition, s.Offset)
}

// shown is everything `dlq show` prints about one record.
type shown struct {
	dlq.Summary
	Key        string                   `json:"key"`
	Headers    map[string]string        `json:"headers"`
	Payload    json.RawMessage          `json:"value,omitempty"`
	RawValue   string                   `json:"raw_value,omitempty"`
	History    []analytics.EventAttempt `json:"attempt_history,omitempty"`
	HistoryErr string                   `json:"attempt_history_error,omitempty"`
}

func writeShown(w io.Writer, e *dlq.Entry, s shown, clickhouse bool) {
	fmt.Fprintf(w, "record %s of the DLQ\n", e.Ref())
	fmt.Fprintf(w, "  event id        %s\n", dash(s.EventID))
	fmt.Fprintf(w, "  endpoint        %s\n", dash(s.Endpoint))
	fmt.Fprintf(w, "  tenant          %s\n", dash(s.Tenant))
	fmt.Fprintf(w, "  type            %s\n", dash(s.Type))
	fmt.Fprintf(w, "  key             %s\n", dash(s.Key))
	fmt.Fprintf(w, "  attempts        %d (first %s, last %s)\n", s.Attempts, stamp(s.FirstAttempt), stamp(s.LastAttempt))
	fmt.Fprintf(w, "  last status     %d\n", s.LastStatus)
	fmt.Fprintf(w, "  error class     %s\n", dash(s.ErrorClass))
	fmt.Fprintf(w, "  last error      %s\n", dash(e.State.LastError))
	fmt.Fprintf(w, "  dlq reason      %s\n", dash(s.Reason))
	fmt.Fprintf(w, "  dead-lettered   %s\n", stamp(s.DeadLetteredAt))
	fmt.Fprintf(w, "  origin          %s/%d/%d\n", dash(e.State.OriginTopic), e.State.OriginPartition, e.State.OriginOffset)
	if s.ReplayID != "" {
		fmt.Fprintf(w, "  replayed by     %s (dead-lettered again after that replay)\n", printable(s.ReplayID))
	}
	if s.Malformed != "" {
		fmt.Fprintf(w, "  malformed       %s\n", printable(s.Malformed))
	}
	if e.StateErr != nil {
		fmt.Fprintf(w, "  bad headers     %s\n", printable(e.StateErr.Error()))
	}
	fmt.Fprintf(w, "  headers\n")
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		fmt.Fprintf(w, "    %-28s %s\n", printable(k), printable(s.Headers[k]))
	}
	fmt.Fprintf(w, "  value\n    %s\n", printable(string(e.Value)))
	switch {
	case !clickhouse:
		fmt.Fprintf(w, "  attempt history: set --clickhouse to read every attempt from the attempts table\n")
	case s.HistoryErr != "":
		fmt.Fprintf(w, "  attempt history: %s\n", printable(s.HistoryErr))
	default:
		fmt.Fprintf(w, "  attempt history (ClickHouse)\n")
		for _, a := range s.History {
			fmt.Fprintf(w, "    #%-2d %-20s %-10s %-14s status %3d  %-18s %7.1fms  %s\n",
				a.Attempt, stamp(a.StartedAt), printable(a.Tier), printable(a.Outcome), a.StatusCode, dash(a.ErrorClass), a.LatencyMS, printable(a.Error))
		}
	}
}

// shownOf is what `dlq show` prints of e, without its attempt history.
func shownOf(d *dlq.Client, e *dlq.Entry) shown {
	s := shown{Summary: e.Summary(d.Tenant(e)), Key: string(e.Key), Headers: map[string]string{}}
	for _, h := range e.Headers {
		s.Headers[h.Key] = string(h.Value)
	}
	if json.Valid(e.Value) {
		s.Payload = e.Value
	} else {
		s.RawValue = string(e.Value)
	}
	return s
}

func writeStats(out io.Writer, s dlq.Stats) {
	fmt.Fprintf(out, "%d records", s.Total)
	if s.Total > 0 {
		fmt.Fprintf(out, ", dead-lettered from %s to %s", stamp(s.Oldest), stamp(s.Newest))
	}
	fmt.Fprintln(out)
	section := func(title string, m map[string]int64) {
		fmt.Fprintf(out, "\nby %s\n", title)
		keys := slices.Collect(maps.Keys(m))
		slices.SortFunc(keys, func(a, b string) int {
			if m[a] != m[b] {
				return int(m[b] - m[a])
			}
			return strings.Compare(a, b)
		})
		for _, k := range keys {
			fmt.Fprintf(out, "  %-32s %10d\n", dash(k), m[k])
		}
	}
	section("endpoint", s.ByEndpoint)
	section("error class", s.ByErrorClass)
	fmt.Fprintf(out, "\nby age\n")
	for _, b := range s.ByAge {
		fmt.Fprintf(out, "  %-32s %10d\n", b.Label, b.Count)
	}
}

func writeReplays(out io.Writer, rs []dlq.ReplaySummary) {
	fmt.Fprintf(out, "%-28s  %-12s  %-20s  %-6s  %-11s  %8s  %8s  %4s  %s\n", "REPLAY ID", "OPERATOR", "STARTED", "TARGET", "OUTCOME", "MATCHED", "SENT", "RUNS", "FILTERS")
	for _, r := range rs {
		a := r.Latest
		fmt.Fprintf(out, "%-28s  %-12s  %-20s  %-6s  %-11s  %8d  %8d  %4d  %s\n",
			printable(a.ReplayID), printable(a.Operator), stamp(a.StartedAt), a.Target, a.Outcome, a.Matched, a.Sent, a.Runs, printable(a.Filter.String()))
		if a.KafkaUser != "" {
			fmt.Fprintf(out, "    kafka user: %s\n", printable(a.KafkaUser))
		}
		if a.Error != "" {
			fmt.Fprintf(out, "    last error: %s\n", printable(a.Error))
		}
	}
	fmt.Fprintf(out, "%d replays\n", len(rs))
}

// writeReplayResult says what a replay run did.
func writeReplayResult(out io.Writer, res dlq.ReplayResult) {
	switch {
	case res.AlreadyCompleted:
		fmt.Fprintf(out, "replay %s had already completed (%d sent to %s); nothing sent\n", res.ReplayID, res.Sent, res.Topic)
	case res.DryRun:
		fmt.Fprintf(out, "dry run of replay %s: %d records would be sent to %s", res.ReplayID, res.Matched-res.Skipped, res.Topic)
		if res.Skipped > 0 {
			fmt.Fprintf(out, " (%d matching records cannot go there and would be skipped)", res.Skipped)
		}
		fmt.Fprintf(out, "; filters %s; nothing was sent\n", res.Filter)
	default:
		verb := "started"
		if res.Resumed {
			verb = "resumed"
		}
		fmt.Fprintf(out, "replay %s (%s) %s: %d records sent to %s, %d skipped; filters %s\n",
			res.ReplayID, verb, res.Outcome, res.Sent, res.Topic, res.Skipped, res.Filter)
	}
}
