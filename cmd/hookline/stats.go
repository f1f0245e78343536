package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/internal/analytics"
)

// runStats runs queries of the analyst pack and prints their results.
func runStats(ctx context.Context, args []string) error {
	return stats(ctx, args, os.Stdout)
}

func stats(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hookline stats --clickhouse HOST:PORT [--database NAME] [--endpoint ID] [--tenant T] [--since 1h] [--query NAME | --event ID] [--json]")
		fmt.Fprintln(fs.Output(), "Runs the core queries of the analyst pack (or one named query) and prints tables;")
		fmt.Fprintln(fs.Output(), "--event ID prints every attempt of one event instead, per endpoint.")
		fmt.Fprintln(fs.Output(), "Settings come from the flags, HOOKLINE_* variables and the --config file, as serve's do.")
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "", "only this endpoint id")
	tenant := fs.String("tenant", "", "only this tenant")
	since := fs.Duration("since", analytics.DefaultWindow, "how far back to look")
	limit := fs.Uint("limit", 20, "rows for queries that rank (tenants)")
	queryName := fs.String("query", "", "run only this query of the pack (see --list)")
	list := fs.Bool("list", false, "list the queries of the pack and exit")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	event := fs.String("event", "", "print every attempt of this event `id` per endpoint (the event_history query); --since defaults to "+eventWindow.String()+" with it")
	cfg, err := loadClickHouse(fs, args, nil)
	if err != nil {
		return err
	}
	db := cfg.ClickHouseDatabase
	sinceSet := false
	fs.Visit(func(f *flag.Flag) { sinceSet = sinceSet || f.Name == "since" })
	if *event != "" && !sinceSet {
		*since = eventWindow
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("stats: unexpected arguments %q", fs.Args())
	case *since <= 0:
		return fmt.Errorf("stats: --since: must be positive, got %s", *since)
	case *limit == 0 || *limit > 1<<31:
		return fmt.Errorf("stats: --limit: must be between 1 and %d, got %d", 1<<31, *limit)
	}
	if *list {
		return listQueries(w)
	}
	if *event != "" && *queryName != "" {
		return errors.New("stats: --event and --query: give one")
	}
	queries, err := selectQueries(*queryName)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if cfg.ClickHouse == "" {
		return fmt.Errorf("stats: %w", errNoClickHouse)
	}
	opts := analytics.ConnOptionsFrom(cfg)
	conn, err := analytics.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	defer func() { _ = conn.Close() }()
	now := time.Now()
	if *event != "" {
		return eventHistory(ctx, w, conn, db, *event, now.Add(-*since), now.Add(time.Minute), *asJSON)
	}
	p := analytics.Params{
		Database: db,
		From:     now.Add(-*since),
		To:       now.Add(time.Minute),
		Endpoint: *endpoint,
		Tenant:   *tenant,
		Limit:    uint32(*limit),
	}
	var results []analytics.Result
	for _, q := range queries {
		r, err := analytics.RunQuery(ctx, conn, q, p)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		results = append(results, r)
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(w, "hookline stats: %s on %s, since %s", db, opts.Addr, p.From.UTC().Format(time.RFC3339))
	if *endpoint != "" {
		fmt.Fprintf(w, ", endpoint %s", *endpoint)
	}
	if *tenant != "" {
		fmt.Fprintf(w, ", tenant %s", *tenant)
	}
	fmt.Fprint(w, "\n\n")
	for _, r := range results {
		if err := r.WriteText(w); err != nil {
			return err
		}
	}
	return nil
}

// eventWindow is how far back stats --event looks unless --since says.
const eventWindow = 30 * 24 * time.Hour

// eventHistory prints every attempt of one event, grouped by endpoint.
func eventHistory(ctx context.Context, w io.Writer, conn driver.Conn, db, event string, from, to time.Time, asJSON bool) error {
	attempts, err := analytics.EventHistory(ctx, conn, db, event, from, to)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Event    string                   `json:"event_id"`
			Attempts []analytics.EventAttempt `json:"attempts"`
		}{event, append([]analytics.EventAttempt{}, attempts...)})
	}
	if len(attempts) == 0 {
		fmt.Fprintf(w, "event %s: no attempts in %s since %s\n", event, db, from.UTC().Format(time.RFC3339))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	endpoint := ""
	for _, a := range attempts {
		if a.EndpointID != endpoint {
			if endpoint != "" {
				fmt.Fprintln(tw)
			}
			endpoint = a.EndpointID
			fmt.Fprintf(tw, "event %s to endpoint %s\n", event, endpoint)
			fmt.Fprintln(tw, "attempt\ttier\toutcome\tstatus\terror_class\tlatency_ms\tstarted_at\tnext\terror")
		}
		status := strconv.Itoa(int(a.StatusCode))
		if a.Skipped {
			status = "skipped"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\n", a.Attempt, a.Tier, a.Outcome, status, dash(a.ErrorClass),
			a.LatencyMS, a.StartedAt.Format("2006-01-02 15:04:05.999"), dash(a.NextTier), a.Error)
	}
	return tw.Flush()
}

// selectQueries returns the named query, or the core ones when name is "".
func selectQueries(name string) ([]analytics.Query, error) {
	if name != "" {
		q, err := analytics.LookupQuery(name)
		if err != nil {
			return nil, err
		}
		return []analytics.Query{q}, nil
	}
	all, err := analytics.Queries()
	if err != nil {
		return nil, err
	}
	var core []analytics.Query
	for _, q := range all {
		if q.Core {
			core = append(core, q)
		}
	}
	return core, nil
}

func listQueries(w io.Writer) error {
	qs, err := analytics.Queries()
	if err != nil {
		return err
	}
	for _, q := range qs {
		mark := " "
		if q.Core {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %-24s %s\n", mark, q.Name, q.Title)
	}
	fmt.Fprintln(w, "(* run by default; the SQL is in analytics/queries/)")
	return nil
}
