package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

// The usage of a command with verbs lists every verb with its summary, and
// the command line decides the exit code: 0 for help, 2 for no verb or an
// unknown one.
func TestVerbsUsageAndExitCodes(t *testing.T) {
	for _, c := range []struct {
		name   string
		usage  func(*bytes.Buffer)
		run    func(context.Context, []string) error
		verbs  []string
		hidden []string
	}{
		{"endpoints", func(b *bytes.Buffer) { endpointsCommand.usage(b) }, runEndpoints,
			[]string{"add", "list", "get", "update", "rotate-secret", "reencrypt", "delete"}, nil},
		{"dlq", func(b *bytes.Buffer) { dlqCommand.usage(b) }, runDLQ,
			[]string{"list", "show", "stats", "replay", "skip", "replays", "held"}, []string{"generate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			c.usage(&b)
			lines := strings.Split(b.String(), "\n")
			for _, v := range c.verbs {
				found := false
				for _, l := range lines {
					f := strings.Fields(l)
					found = found || (len(f) > 1 && f[0] == v)
				}
				if !found {
					t.Errorf("usage has no line for verb %q with a summary:\n%s", v, b.String())
				}
			}
			for _, v := range c.hidden {
				for _, l := range lines {
					if f := strings.Fields(l); len(f) > 0 && f[0] == v {
						t.Errorf("usage lists hidden verb %q", v)
					}
				}
			}
			for _, tt := range []struct {
				args []string
				code int
			}{
				{[]string{"--help"}, 0},
				{[]string{"-h"}, 0},
				{[]string{c.verbs[0], "-h"}, 0},
				{nil, 2},
				{[]string{"no-such-verb"}, 2},
			} {
				err := c.run(context.Background(), tt.args)
				if got := exitCode(err); got != tt.code {
					t.Errorf("hookline %s %v: %v, exit code %d; want %d", c.name, tt.args, err, got, tt.code)
				}
				if tt.code == 0 && err != nil && err != flag.ErrHelp {
					t.Errorf("hookline %s %v: %v; want flag.ErrHelp", c.name, tt.args, err)
				}
			}
		})
	}
}
