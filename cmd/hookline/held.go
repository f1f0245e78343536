package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/processors"
	"github.com/hookline/hookline/internal/topics"
)

// printHeld lists the held keys of strict endpoints, oldest first.
func printHeld(ctx context.Context, opts []kgo.Opt, set topics.Set, eps []string, asJSON bool) error {
	held, err := app.ReadHolds(ctx, opts, set)
	if err != nil {
		return fmt.Errorf("read held keys from %s: %w", set.Holds, app.KafkaAuthError(err))
	}
	views := make([]processors.HeldKeyView, 0, len(held))
	for _, h := range held {
		if len(eps) > 0 && !slices.Contains(eps, h.EndpointID) {
			continue
		}
		views = append(views, h.View())
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, v := range views {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tKEY\tPARTITION\tHELD BY\tSTATE\tSINCE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", printable(v.Endpoint), printable(v.OrderingKey), v.Partition, printable(v.EventID), v.State,
			v.Since.UTC().Format(time.RFC3339), v.Attempts, v.NextAttempt.UTC().Format(time.RFC3339), printable(v.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d held keys\n", len(views))
	return nil
}
