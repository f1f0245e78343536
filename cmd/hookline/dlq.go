package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
)

const dlqUsage = `Usage: hookline dlq <list|show|stats|replay|skip|replays|held> [flags] [ARG]

Reads and re-drives the dead-letter topic directly through Kafka (--brokers,
or the embedded broker of a running 'hookline serve' at --kafka-listen). It
reads the DLQ partitions directly, never in a consumer group, up to their
end as of the start: it disturbs nothing and streams, however deep the DLQ.

  list     one line per dead-lettered (event, endpoint) pair; --json: one JSON object per line
  show     <event-id | partition:offset>: headers, payload and attempts of each record
           (attempts from ClickHouse too when --clickhouse is set)
  stats    counts by endpoint, error class and age
  replay   send the matching records back, keeping their event ids:
             --to events|retry   events (default): re-enter as a new event for the same
                                 endpoint; retry: into the first retry tier, due now
             --dry-run           show what would be sent; send and record nothing
             --rate N            at most N records per second
             --replay-id ID      name the replay; the same ID again resumes an
                                 interrupted replay and sends nothing twice
             --operator NAME     who replays, for the audit trail (default $USER);
                                 self-declared, so with SASL the audit also
                                 records the Kafka user
           A pair that holds its key at a strict endpoint (on_dead_letter hold)
           is not sent anew: the key's release is, and the strict stage attempts
           it again in its key's place; the rest of the key follows once it is
           delivered.
  skip     release the keys the matching pairs hold at strict endpoints
           (on_dead_letter hold) without delivering them; the flags of replay
           but --to; audited like a replay. Pairs that hold no key are skipped.
  replays  every replay and skip from the audit trail: who, when, what, how many, outcome
  held     the keys of strict endpoints held by an event that failed, since when,
           its attempts and when it is tried next; --endpoint ID,... filters

Filters of list, stats, replay and skip (a comma-separated list matches any value):
  --event-id ID,...     --endpoint ID,...     --tenant T,...
  --type T,... (order.* matches a prefix)     --error-class http_5xx,timeout,...
  --status 503,4xx,0 (0: no response)         --min-attempts N
  --since/--until  when the pair was dead-lettered: 2026-01-02T15:04:05Z,
                   2026-01-02, or a duration ago (90m)
  --limit N        stop after N matches
`

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

func runDLQ(ctx context.Context, args []string) error {
	sub, args, fs, err := subcommand("dlq", dlqUsage, args)
	if err != nil {
		return err
	}
	var (
		ff       dlqFilterFlags
		asJSON   = new(bool)
		to       = new(string)
		dryRun   = new(bool)
		rate     = new(float64)
		replayID = new(string)
		operator = new(string)
		count    = new(int)
	)
	switch sub {
	case "list", "stats", "replay", "skip":
		ff.register(fs)
	case "show", "replays":
	case "held":
		fs.StringVar(&ff.endpoints, "endpoint", "", "comma-separated endpoint `ids`")
	case "generate":
		// Hidden: fills the DLQ with synthetic records to measure the
		// tooling on a deep DLQ. Never for a production cluster.
		fs.IntVar(count, "count", 1000, "records to write")
	default:
		fmt.Fprint(os.Stderr, dlqUsage)
		return fmt.Errorf("unknown dlq subcommand %q", sub)
	}
	switch sub {
	case "list", "show", "stats", "replays", "held":
		fs.BoolVar(asJSON, "json", false, "print JSON")
	case "replay", "skip":
		if sub == "replay" {
			fs.StringVar(to, "to", "", "`target`: events (default) or retry (the first retry tier)")
		} else {
			*to = string(dlq.TargetSkip)
		}
		fs.BoolVar(dryRun, "dry-run", false, "show what would be sent; send and record nothing")
		fs.Float64Var(rate, "rate", 0, "at most `n` records per second (0: no limit)")
		fs.StringVar(replayID, "replay-id", "", "replay `id`; an existing one resumes that replay (default: generated)")
		fs.StringVar(operator, "operator", os.Getenv("USER"), "`name` of who replays, for the audit trail")
	}
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	wantArgs := 0
	if sub == "show" {
		wantArgs = 1
	}
	if fs.NArg() != wantArgs {
		if wantArgs == 1 {
			return fmt.Errorf("dlq show: want exactly one <event-id | partition:offset> argument, got %d (flags go before the argument)", fs.NArg())
		}
		return fmt.Errorf("dlq %s: unexpected argument %q (flags go before arguments)", sub, fs.Arg(0))
	}
	var filter dlq.Filter
	if sub == "list" || sub == "stats" || sub == "replay" || sub == "skip" {
		if filter, err = ff.filter(time.Now()); err != nil {
			return err
		}
	}
	if sub == "replay" || sub == "skip" {
		if sub == "replay" && *to != "" && *to != string(dlq.TargetEvents) && *to != string(dlq.TargetRetry) {
			return fmt.Errorf("--to: want events or retry, got %q", *to)
		}
		if !(*rate >= 0) {
			return fmt.Errorf("--rate: must not be negative, got %v", *rate)
		}
		if strings.TrimSpace(*operator) == "" {
			return errors.New("--operator: required for the audit trail (or set $USER)")
		}
		if err := dlq.CheckOperator(*operator); err != nil {
			return fmt.Errorf("--operator %q: %w", *operator, err)
		}
	}

	cl, secure, set, err := connect(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	if sub == "held" {
		return printHeld(ctx, append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, secure...), set, splitComma(ff.endpoints), *asJSON)
	}
	dcfg := dlq.Config{Brokers: seeds, ClientOpts: secure, Topics: set, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if !cfg.Embedded() && cfg.SASLMechanism() != "" {
		// The brokers checked this name; --operator is only declared.
		dcfg.KafkaUser = cfg.KafkaSASLUsername
	}
	if sub != "replays" && sub != "generate" {
		reg := endpoints.NewRegistry(cl, set.Endpoints, slog.New(slog.DiscardHandler))
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go reg.Run(runCtx)
		waitCtx, cancelWait := context.WithTimeout(ctx, 15*time.Second)
		defer cancelWait()
		if err := reg.WaitReady(waitCtx); err != nil {
			return fmt.Errorf("read endpoints topic %s (is Kafka reachable? --brokers, or a running serve's --kafka-listen): %w", set.Endpoints, app.KafkaAuthError(err))
		}
		dcfg.TenantOf = func(id string) string {
			e, _ := reg.Get(id)
			return e.Tenant
		}
	}
	d, err := dlq.New(dcfg)
	if err != nil {
		return err
	}
	defer d.Close()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	switch sub {
	case "list":
		return dlqList(ctx, d, filter, *asJSON, out)
	case "show":
		return dlqShow(ctx, d, cfg, fs.Arg(0), *asJSON, out)
	case "stats":
		return dlqStats(ctx, d, filter, *asJSON, out)
	case "replays":
		return dlqReplays(ctx, d, *asJSON, out)
	case "generate":
		start := time.Now()
		if err := d.Generate(ctx, *count); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %d records to %s in %v\n", *count, set.DLQ, time.Since(start).Round(time.Millisecond))
		return nil
	default:
		id := *replayID
		if id == "" {
			id = dlq.NewReplayID(time.Now())
		}
		err := dlqReplay(ctx, d, dlq.ReplayOptions{
			ID: id, Operator: *operator, Target: dlq.Target(*to), Filter: filter, DryRun: *dryRun, Rate: *rate,
		}, out)
		if cfg.ClickHouse != "" && !*dryRun {
			err = errors.Join(err, auditToClickHouse(ctx, cfg, d, id))
		}
		return err
	}
}

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

// dash is s escaped for the terminal (see printable), or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// dlqList streams: one line (or JSON object) per entry as it is read, so
// memory stays flat however many there are.
func dlqList(ctx context.Context, d *dlq.Client, f dlq.Filter, asJSON bool, out *bufio.Writer) error {
	enc := json.NewEncoder(out)
	if !asJSON {
		out.WriteString(listHeader)
	}
	n := 0
	err := d.Scan(ctx, f, func(e *dlq.Entry) error {
		n++
		s := e.Summary(d.Tenant(e))
		if asJSON {
			return enc.Encode(s)
		}
		writeListLine(out, s)
		return nil
	})
	if err != nil {
		return err
	}
	if !asJSON {
		fmt.Fprintf(out, "%d records\n", n)
	}
	return nil
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

func dlqShow(ctx context.Context, d *dlq.Client, cfg config.Config, ref string, asJSON bool, out *bufio.Writer) error {
	entries, err := d.Find(ctx, ref)
	if err != nil {
		return err
	}
	var history func(eventID, endpointID string) ([]analytics.EventAttempt, error)
	if cfg.ClickHouse != "" {
		if err := analytics.CheckDatabaseName(cfg.ClickHouseDatabase); err != nil {
			return err
		}
		conn, err := analytics.Open(ctx, analytics.ConnOptionsFrom(cfg))
		if err != nil {
			return err
		}
		defer conn.Close()
		// The pack's event_history query, over all time, of this pair.
		history = func(eventID, endpointID string) ([]analytics.EventAttempt, error) {
			all, err := analytics.EventHistory(ctx, conn, cfg.ClickHouseDatabase, eventID, time.Unix(0, 0), time.Now().Add(time.Minute))
			return slices.DeleteFunc(all, func(a analytics.EventAttempt) bool { return a.EndpointID != endpointID }), err
		}
	}
	for i, e := range entries {
		s := shown{Summary: e.Summary(d.Tenant(e)), Key: string(e.Key), Headers: map[string]string{}}
		for _, h := range e.Headers {
			s.Headers[h.Key] = string(h.Value)
		}
		if json.Valid(e.Value) {
			s.Payload = e.Value
		} else {
			s.RawValue = string(e.Value)
		}
		if history != nil && e.EventID != "" {
			if s.History, err = history(e.EventID, e.Endpoint()); err != nil {
				s.HistoryErr = err.Error()
			}
		}
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(s); err != nil {
				return err
			}
			continue
		}
		if i > 0 {
			out.WriteString("\n")
		}
		writeShown(out, e, s, history != nil)
	}
	return nil
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

func dlqStats(ctx context.Context, d *dlq.Client, f dlq.Filter, asJSON bool, out *bufio.Writer) error {
	s, err := d.Stats(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
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
	return nil
}

func dlqReplays(ctx context.Context, d *dlq.Client, asJSON bool, out *bufio.Writer) error {
	rs, err := d.Replays(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
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
	return nil
}

func dlqReplay(ctx context.Context, d *dlq.Client, o dlq.ReplayOptions, out *bufio.Writer) error {
	if o.DryRun {
		out.WriteString(listHeader)
		o.OnMatch = func(e *dlq.Entry) { writeListLine(out, e.Summary(d.Tenant(e))) }
	} else {
		p := newProgressView(os.Stderr)
		o.Progress = p.update
		defer p.finish()
	}
	res, err := d.Replay(ctx, o)
	switch {
	case err != nil:
		return err
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
	return nil
}

// auditToClickHouse copies the replay's latest audit record (whatever its
// outcome, interrupted included) into the ClickHouse audit table.
func auditToClickHouse(ctx context.Context, cfg config.Config, d *dlq.Client, replayID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rs, err := d.Replays(ctx)
	if err != nil {
		return fmt.Errorf("read the audit topic for clickhouse: %w", err)
	}
	var latest *dlq.AuditRecord
	for i := range rs {
		if rs[i].Latest.ReplayID == replayID {
			latest = &rs[i].Latest
		}
	}
	if latest == nil {
		return nil // nothing was recorded: the replay did not start
	}
	conn, err := analytics.Open(ctx, analytics.ConnOptionsFrom(cfg))
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", cfg.ClickHouse, err)
	}
	defer conn.Close()
	if err := analytics.MigrateRetention(ctx, conn, cfg.ClickHouseDatabase, analytics.RetentionFrom(cfg)); err != nil {
		return err
	}
	return analytics.RecordReplay(ctx, conn, cfg.ClickHouseDatabase, analytics.ReplayRow{
		ReplayID: latest.ReplayID, Operator: latest.Operator, StartedAt: latest.StartedAt, At: latest.At,
		Target: string(latest.Target), Topic: latest.Topic, Filters: latest.Filter.String(),
		Matched: uint64(latest.Matched), Sent: uint64(latest.Sent), Skipped: uint64(latest.Skipped),
		Runs: uint32(latest.Runs), Outcome: string(latest.Outcome), Error: latest.Error,
	})
}

// progressView draws replay progress: a bar redrawn in place on a
// terminal, else a plain line every few seconds, for logs.
type progressView struct {
	w      *os.File
	tty    bool
	last   time.Time
	sent0  int64
	seen   bool
	latest dlq.Progress
}

func newProgressView(w *os.File) *progressView {
	st, err := w.Stat()
	return &progressView{w: w, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progressView) update(pr dlq.Progress) {
	if !p.seen {
		p.seen, p.sent0 = true, pr.Sent
	}
	p.latest = pr
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.draw(pr)
}

func (p *progressView) draw(pr dlq.Progress) {
	sent := pr.Sent - p.sent0
	secs := pr.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(sent) / secs
	}
	frac := 1.0
	if pr.Total > 0 {
		frac = min(float64(pr.Scanned)/float64(pr.Total), 1)
	}
	eta := "-"
	if pr.Scanned > 0 && frac < 1 {
		eta = (time.Duration(float64(pr.Elapsed) * (1 - frac) / frac)).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		fill := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  read %d/%d  sent %d  %.1f/s  eta %s   ",
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, pr.Scanned, pr.Total, sent, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "replay %s: read %d/%d DLQ records (%.0f%%), matched %d, sent %d (%.1f/s), eta %s\n",
		pr.ReplayID, pr.Scanned, pr.Total, frac*100, pr.Matched, sent, rate, eta)
}

func (p *progressView) finish() {
	if !p.seen {
		return
	}
	p.draw(p.latest)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
