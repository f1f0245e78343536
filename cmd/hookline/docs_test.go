package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/processors"
)

// The docs name the lists that code and docs share (error classes, config
// keys, subcommands), and these tests hold them to the code, so that a new
// class, key or subcommand without docs fails here. Metrics are held to
// docs/metrics.md in metrics_test.go.

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// backticked is every `word` in s.
var backticked = regexp.MustCompile("`([^`]+)`")

// Every error class is a row of the table in docs/attempts.md, with its
// meaning, and is named in docs/analytics.md; neither names a class that
// does not exist.
func TestDocsNameEveryErrorClass(t *testing.T) {
	attempts, analytics := readDoc(t, "docs/attempts.md"), readDoc(t, "docs/analytics.md")
	known := map[string]bool{"error_class": true, "''": true}
	for _, c := range processors.ErrorClasses {
		known[string(c.Class)] = true
		row := "| `" + string(c.Class) + "` | " + c.Meaning + " |"
		if !strings.Contains(attempts, row) {
			t.Errorf("docs/attempts.md: the table of error classes has no row %q", row)
		}
		if !strings.Contains(analytics, "`"+string(c.Class)+"`") {
			t.Errorf("docs/analytics.md does not name error class `%s`", c.Class)
		}
	}
	// The rows that list classes are the ones that name http_4xx.
	for path, doc := range map[string]string{"docs/attempts.md": attempts, "docs/analytics.md": analytics} {
		for line := range strings.Lines(doc) {
			if !strings.Contains(line, "`http_4xx`") || !strings.HasPrefix(line, "| `error_class`") {
				continue
			}
			for _, m := range backticked.FindAllStringSubmatch(line, -1) {
				if !known[m[1]] && !strings.HasSuffix(m[1], ".md") {
					t.Errorf("%s names error class `%s`, which processors.ErrorClasses does not have", path, m[1])
				}
			}
		}
	}
}

// yamlKeys is every yaml key of the struct type typ and of the structs it
// holds (tokens' keys included), in field order.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		keys = append(keys, key)
		elem := f.Type
		for elem.Kind() == reflect.Slice || elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() == reflect.Struct && elem.PkgPath() == typ.PkgPath() {
			keys = append(keys, yamlKeys(elem)...)
		}
	}
	return keys
}

// Every config key is a key of internal/config/example.yaml (set or
// commented out), the page the README points to for settings; every
// environment variable config.Load reads is either a key's HOOKLINE_ name,
// the rule example.yaml states, or named in it as it is.
func TestDocsNameEveryConfigKey(t *testing.T) {
	example := readDoc(t, "internal/config/example.yaml")
	readme := readDoc(t, "README.md")
	if !strings.Contains(readme, "internal/config/example.yaml") {
		t.Error("README.md does not point to internal/config/example.yaml for the settings")
	}
	keyLine := regexp.MustCompile(`(?m)^\s*(?:#\s*)?(?:-\s+)?([a-z0-9_]+):`)
	documented := map[string]bool{}
	for _, m := range keyLine.FindAllStringSubmatch(example, -1) {
		documented[m[1]] = true
	}
	keys := yamlKeys(reflect.TypeFor[config.Config]())
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("internal/config/example.yaml does not document config key %s", k)
		}
	}

	if !strings.Contains(example, "HOOKLINE_MAX_ATTEMPTS") {
		t.Error("internal/config/example.yaml no longer states the environment rule (max_attempts -> HOOKLINE_MAX_ATTEMPTS)")
	}
	var read []string
	getenv := func(name string) string {
		read = append(read, name)
		return ""
	}
	fs := flag.NewFlagSet("docs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := config.Load(fs, nil, getenv); err != nil {
		t.Fatalf("load the defaults: %v", err)
	}
	if len(read) == 0 {
		t.Fatal("config.Load read no environment variable through getenv")
	}
	for _, name := range read {
		key := strings.ToLower(strings.TrimPrefix(name, config.EnvPrefix))
		if slices.Contains(keys, key) || strings.Contains(example, name) {
			continue
		}
		t.Errorf("config.Load reads %s, which is neither HOOKLINE_ and a documented key nor named in internal/config/example.yaml", name)
	}
}

// usageOf runs `hookline <name> -h` and returns what it printed.
func usageOf(t *testing.T, c command) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	stderr := os.Stderr
	os.Stderr = w
	err = c.run(context.Background(), []string{"-h"})
	os.Stderr = stderr
	_ = w.Close()
	b := <-out
	_ = r.Close()
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("hookline %s -h: %v, want flag.ErrHelp", c.name, err)
	}
	return string(b)
}

// verbsLine is the first line of the usage of a command with sub-verbs:
// "Usage: hookline dlq <list|show|...> [flags] [ARG]".
var verbsLine = regexp.MustCompile(`(?mi)^usage: hookline \S+ <([a-z|-]+)>`)

// Every subcommand is a row of the README's table of subcommands, and
// every sub-verb its usage lists is in that row.
func TestDocsNameEverySubcommand(t *testing.T) {
	readme := readDoc(t, "README.md")
	for _, c := range commands() {
		var row string
		for line := range strings.Lines(readme) {
			if strings.HasPrefix(line, "| `"+c.name+"`") || strings.HasPrefix(line, "| `"+c.name+" ") {
				row = line
				break
			}
		}
		if row == "" {
			t.Errorf("README.md: the table of subcommands has no row for %s", c.name)
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(row, "| `"+c.name), "`")
		documented := strings.Split(strings.TrimSpace(cell), `\|`)
		var verbs []string
		if m := verbsLine.FindStringSubmatch(usageOf(t, c)); m != nil {
			verbs = strings.Split(m[1], "|")
		}
		// Both have sub-verbs: a usage that no longer lists them in this
		// form must not make this test check nothing.
		if (c.name == "endpoints" || c.name == "dlq") && len(verbs) == 0 {
			t.Errorf("hookline %s -h lists no sub-verbs as <a|b|...>", c.name)
		}
		for _, v := range verbs {
			if !slices.Contains(documented, v) {
				t.Errorf("README.md: the row of %s does not name its sub-verb %s (`%s %s`)", c.name, v, c.name, strings.Join(verbs, `\|`))
			}
		}
	}
}
