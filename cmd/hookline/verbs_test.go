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
		name string
		// command returns the command's run, writing to w.
		command func(w *bytes.Buffer) func(context.Context, []string) error
		verbs   []string
		hidden  []string
	}{
		{"endpoints", func(w *bytes.Buffer) func(context.Context, []string) error {
			c := endpointsCommand
			c.stderr = w
			return c.run
		}, []string{"add", "list", "get", "update", "rotate-secret", "reencrypt", "delete"}, nil},
		{"dlq", func(w *bytes.Buffer) func(context.Context, []string) error {
			c := dlqCommand
			c.stderr = w
			return c.run
		}, []string{"list", "show", "stats", "replay", "skip", "replays", "held"}, []string{"generate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, tt := range []struct {
				args  []string
				code  int
				usage bool // prints the command's usage
			}{
				{[]string{"--help"}, 0, true},
				{[]string{"-h"}, 0, true},
				{nil, 2, true},
				{[]string{"no-such-verb"}, 2, true},
				{[]string{c.verbs[0], "-h"}, 0, false},
			} {
				var b bytes.Buffer
				err := c.command(&b)(context.Background(), tt.args)
				if got := exitCode(err); got != tt.code {
					t.Errorf("hookline %s %v: %v, exit code %d; want %d", c.name, tt.args, err, got, tt.code)
				}
				if tt.code == 0 && err != nil && err != flag.ErrHelp {
					t.Errorf("hookline %s %v: %v; want flag.ErrHelp", c.name, tt.args, err)
				}
				if tt.usage {
					checkUsage(t, c.name, tt.args, b.String(), c.verbs, c.hidden)
				} else if !strings.Contains(b.String(), "Usage: hookline "+c.name+" "+c.verbs[0]) {
					t.Errorf("hookline %s %v printed no usage of the verb:\n%s", c.name, tt.args, b.String())
				}
			}
		})
	}
}

// checkUsage checks that a command's usage has a line with a summary for
// every verb and none for a hidden one.
func checkUsage(t *testing.T, name string, args []string, usage string, verbs, hidden []string) {
	t.Helper()
	lines := strings.Split(usage, "\n")
	for _, v := range verbs {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			found = found || (len(f) > 1 && f[0] == v)
		}
		if !found {
			t.Errorf("hookline %s %v: usage has no line for verb %q with a summary:\n%s", name, args, v, usage)
		}
	}
	for _, v := range hidden {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == v {
				t.Errorf("hookline %s %v: usage lists hidden verb %q", name, args, v)
			}
		}
	}
}
