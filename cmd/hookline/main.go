// Command hookline is the webhook delivery pipeline: one binary with a
// subcommand per job. `hookline help` lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the pipeline: ingest API, delivery stages, metrics (embedded Kafka unless --brokers)", runServe},
		{"demo", "run the pipeline end to end on the embedded broker against built-in receivers", runDemo},
		{"endpoints", "manage endpoints: " + endpointsCommand.names(), runEndpoints},
		{"dlq", "inspect and re-drive the dead-letter topic: " + dlqCommand.names(), runDLQ},
		{"bench", "measure end-to-end deliveries per second against the raw HTTP POST rate", runBench},
		{"outbox", "relay a PostgreSQL outbox table to the events topic (docs/outbox.md)", runOutbox},
		{"migrate", "create or upgrade the ClickHouse schema, or the PostgreSQL outbox table", runMigrate},
		{"stats", "print delivery health from ClickHouse", runStats},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "hookline: webhook delivery on Kafka\n\nUsage: hookline <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'hookline <command> -h' for a command's flags. Every setting is also a\nHOOKLINE_* environment variable and a key of the --config YAML file.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "help" || name == "-h" || name == "--help" {
		usage()
		return
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, args)
		stop()
		code := exitCode(err)
		if code != 0 {
			fmt.Fprintf(os.Stderr, "hookline %s: %v\n", name, err)
		}
		os.Exit(code)
	}
	fmt.Fprintf(os.Stderr, "hookline: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
