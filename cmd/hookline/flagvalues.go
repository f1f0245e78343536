package main

import (
	"fmt"
	"strings"
)

// Flag values the subcommands share.

// headerFlags collects repeated --header 'Name: value' flags; an empty
// value (--header 'Name:') removes the header on update.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	h[name] = strings.TrimSpace(value)
	return nil
}

// splitComma splits a comma-separated flag into its trimmed, non-empty items.
func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
