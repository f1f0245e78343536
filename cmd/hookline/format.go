package main

import "time"

// Text formatting the subcommands share.

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
