package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookline/hookline/internal/config"
)

// verbs is a command with sub-verbs (endpoints, dlq): a table of verbs,
// each with its flags and what it runs. Its usage is generated from the
// table. O holds the values of a verb's flags.
type verbs[O any] struct {
	name  string // the command: "endpoints"
	about string // what the command does, under the usage line
	// footer follows the verb list in the usage (flags several verbs share).
	footer string
	// leadArg accepts one argument before the flags as well as after them:
	// "update ID --url ..." reads naturally.
	leadArg bool
	verbs   []verb[O]
	// stderr receives the usage and flag errors; nil is os.Stderr.
	stderr io.Writer
}

// verb is one sub-verb.
type verb[O any] struct {
	name    string
	args    string // its arguments in the usage line: "ID"
	summary string // one line in the command's usage
	help    string // more about it, in 'hookline <command> <verb> -h'
	hidden  bool   // not listed (dlq generate: a tool for measuring)
	// flags registers the verb's own flags on fs, into o; config.Load adds
	// the settings' flags.
	flags func(fs *flag.FlagSet, o *O)
	run   func(ctx context.Context, in invocation, o *O) error
}

// invocation is what a verb runs with: the loaded settings, its flag set
// (to tell which flags were given) and its arguments.
type invocation struct {
	verb string
	cfg  config.Config
	fs   *flag.FlagSet
	args []string
}

// given reports whether the flag was on the command line.
func (in invocation) given(name string) bool {
	found := false
	in.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// usageError is a command line that names no known verb: main prints the
// usage and exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitCode is the process exit code of a command's error.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// names lists the verbs that the usage shows: "add, list, get".
func (c verbs[O]) names() string {
	return strings.Join(c.listed(), ", ")
}

func (c verbs[O]) listed() []string {
	var names []string
	for _, v := range c.verbs {
		if !v.hidden {
			names = append(names, v.name)
		}
	}
	return names
}

// usage writes the command's usage: every listed verb with its summary.
func (c verbs[O]) usage(w io.Writer) {
	width := 0
	for _, n := range c.listed() {
		width = max(width, len(n))
	}
	fmt.Fprintf(w, "Usage: hookline %s <%s> [flags] [ARG]\n\n%s\n\nVerbs:\n", c.name, strings.Join(c.listed(), "|"), c.about)
	for _, v := range c.verbs {
		if !v.hidden {
			fmt.Fprintf(w, "  %-*s  %s\n", width, v.name, v.summary)
		}
	}
	if c.footer != "" {
		fmt.Fprintf(w, "\n%s", c.footer)
	}
	fmt.Fprintf(w, "\nRun 'hookline %s <verb> -h' for a verb's flags.\n", c.name)
}

// run picks the verb named by args[0], registers its flags, loads the
// settings and runs it. No verb, or an unknown one, prints the usage and
// is a *usageError; -h prints it and is flag.ErrHelp.
func (c verbs[O]) run(ctx context.Context, args []string) error {
	stderr := c.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage(stderr)
		if len(args) == 0 {
			return &usageError{fmt.Sprintf("%s: missing verb", c.name)}
		}
		return flag.ErrHelp
	}
	var v *verb[O]
	for i := range c.verbs {
		if c.verbs[i].name == args[0] {
			v = &c.verbs[i]
		}
	}
	if v == nil {
		c.usage(stderr)
		return &usageError{fmt.Sprintf("unknown %s verb %q", c.name, args[0])}
	}
	args = args[1:]
	fs := flag.NewFlagSet(c.name+" "+v.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hookline %s %s [flags] %s\n\n%s\n", c.name, v.name, v.args, v.summary)
		if v.help != "" {
			fmt.Fprintf(fs.Output(), "%s\n", v.help)
		}
		fmt.Fprint(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	var o O
	if v.flags != nil {
		v.flags(fs, &o)
	}
	var lead []string
	if c.leadArg && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		lead, args = args[:1], args[1:]
	}
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	return v.run(ctx, invocation{verb: v.name, cfg: cfg, fs: fs, args: append(lead, fs.Args()...)}, &o)
}
