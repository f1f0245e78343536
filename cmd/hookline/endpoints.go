package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/config"
	"github.com/hookline/hookline/endpoints"
)

const endpointsUsage = `Usage: hookline endpoints <add|list|get|update|delete> [flags] [ID]

Manages endpoints in the endpoints topic, directly through Kafka (--brokers,
or the embedded broker of a running 'hookline serve' at --kafka-listen).

  add     --url URL [--id ID] [--secret whsec_...] [--tenant T] [--event-types a,b.*] [--timeout 15s]
          prints the endpoint with its secret in full, the only time it is shown
  list    one line per endpoint, secrets masked
  get     ID
  update  ID [--url URL] [--tenant T] [--event-types ...] [--timeout D] [--enabled=true|false] [--add-secret whsec_...]
  delete  ID
`

func runEndpoints(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, endpointsUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("endpoints "+sub, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), endpointsUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		id         = new(string)
		url        = new(string)
		secret     = new(string)
		tenant     = new(string)
		eventTypes = new(string)
		timeout    = new(time.Duration)
		enabled    = new(bool)
		addSecret  = new(string)
		asJSON     = fs.Bool("json", false, "print JSON")
	)
	switch sub {
	case "add":
		fs.StringVar(id, "id", "", "endpoint `id` (default: generated)")
		fallthrough
	case "update":
		fs.StringVar(url, "url", "", "destination `URL` (http or https)")
		fs.StringVar(tenant, "tenant", "", "`tenant` the endpoint belongs to (for fan-out events)")
		fs.StringVar(eventTypes, "event-types", "", "comma-separated event `types` to receive; a trailing * matches a prefix; empty: all")
		fs.DurationVar(timeout, "timeout", 0, "per-request `timeout` (default: the server's endpoint_timeout)")
	case "list", "get", "delete":
	default:
		fmt.Fprint(os.Stderr, endpointsUsage)
		return fmt.Errorf("unknown endpoints subcommand %q", sub)
	}
	switch sub {
	case "add":
		fs.StringVar(secret, "secret", "", "signing `secret` whsec_... (default: generated)")
	case "update":
		fs.BoolVar(enabled, "enabled", true, "enable or disable the endpoint")
		fs.StringVar(addSecret, "add-secret", "", "add a signing `secret`; deliveries carry one signature per secret")
	}
	// Accept the ID before the flags too: "update ID --url ..." reads naturally.
	var lead []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		lead, args = args[:1], args[1:]
	}
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	positional := append(lead, fs.Args()...)
	set := func(name string) bool {
		found := false
		fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
		return found
	}
	argID := func() (string, error) {
		if len(positional) != 1 {
			return "", fmt.Errorf("endpoints %s: want exactly one endpoint ID argument, got %d", sub, len(positional))
		}
		return positional[0], nil
	}

	cl, topicSet, err := connect(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	reg := endpoints.NewRegistry(cl, topicSet.Endpoints, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go reg.Run(runCtx)
	waitCtx, cancelWait := context.WithTimeout(ctx, 15*time.Second)
	defer cancelWait()
	if err := reg.WaitReady(waitCtx); err != nil {
		return fmt.Errorf("read endpoints topic %s (is Kafka reachable? --brokers, or a running serve's --kafka-listen): %w", topicSet.Endpoints, err)
	}

	switch sub {
	case "add":
		if len(positional) != 0 {
			return fmt.Errorf("endpoints add: unexpected argument %q (give the id with --id)", positional[0])
		}
		e := endpoints.Endpoint{ID: *id, URL: *url, Tenant: *tenant, Enabled: true, TimeoutMS: int(*timeout / time.Millisecond)}
		if e.ID == "" {
			e.ID = endpoints.GenerateID()
		}
		if *eventTypes != "" {
			e.EventTypes = splitComma(*eventTypes)
		}
		if *secret == "" {
			if *secret, err = endpoints.GenerateSecret(); err != nil {
				return err
			}
		}
		e.Secrets = []string{*secret}
		if err := reg.Create(ctx, e); err != nil {
			return err
		}
		got, _ := reg.Get(e.ID)
		return printEndpoints(*asJSON, false, got)
	case "list":
		return printEndpoints(*asJSON, true, reg.List()...)
	case "get":
		id, err := argID()
		if err != nil {
			return err
		}
		e, ok := reg.Get(id)
		if !ok {
			return fmt.Errorf("endpoint %s: %w", id, endpoints.ErrNotFound)
		}
		return printEndpoints(true, true, e)
	case "update":
		id, err := argID()
		if err != nil {
			return err
		}
		err = reg.Update(ctx, id, func(e *endpoints.Endpoint) error {
			if set("url") {
				e.URL = *url
			}
			if set("tenant") {
				e.Tenant = *tenant
			}
			if set("event-types") {
				e.EventTypes = splitComma(*eventTypes)
			}
			if set("timeout") {
				e.TimeoutMS = int(*timeout / time.Millisecond)
			}
			if set("enabled") {
				e.Enabled = *enabled
				if *enabled {
					e.DisabledReason = ""
				}
			}
			if set("add-secret") {
				e.Secrets = append(e.Secrets, *addSecret)
			}
			return nil
		})
		if err != nil {
			return err
		}
		e, _ := reg.Get(id)
		return printEndpoints(true, true, e)
	default: // delete
		id, err := argID()
		if err != nil {
			return err
		}
		if err := reg.Delete(ctx, id); err != nil {
			return err
		}
		fmt.Printf("deleted endpoint %s\n", id)
		return nil
	}
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printEndpoints(asJSON, mask bool, eps ...endpoints.Endpoint) error {
	if mask {
		for i := range eps {
			eps[i] = eps[i].Masked()
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if len(eps) == 1 {
			return enc.Encode(eps[0])
		}
		return enc.Encode(eps)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tTENANT\tEVENT TYPES\tENABLED\tSECRETS")
	for _, e := range eps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", e.ID, e.URL, e.Tenant, strings.Join(e.EventTypes, ","), e.Enabled, strings.Join(e.Secrets, " "))
	}
	return tw.Flush()
}
