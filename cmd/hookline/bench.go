package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/config"
)

// benchOptions are the bench's own flags; the pipeline's settings are in
// config.Config.
type benchOptions struct {
	scenario           string
	events, keys       int
	asJSON             bool
	cpuProfile         string
	rate               int
	retryAfter         string
	share              float64
	clients, batchSize int
	endpoints          int
	slowShare          float64
	slowTimeout        time.Duration
	children           int
	set                map[string]bool // flags given on the command line
	// out gets the report, progress the lines on the way.
	out, progress io.Writer
	// childArgs are the settings given on the command line that the scale
	// scenario passes on to its serve processes.
	childArgs []string
	// executable is the hookline binary that scale runs as `serve`.
	executable func() (string, error)
}

// benchReport is what a scenario measured: JSON with --json, else a table.
type benchReport interface {
	table(w io.Writer)
}

// benchScenario is one `hookline bench --scenario`.
type benchScenario struct {
	name  string
	about string
	// flags are the bench flags it reads besides --json and the pipeline's
	// settings.
	flags []string
	// events is its --events default.
	events int
	// defaults adjusts the settings the command line did not give
	// (o.set).
	defaults func(o *benchOptions, cfg *config.Config)
	run      func(ctx context.Context, cfg config.Config, o benchOptions) (benchReport, error)
}

// benchScenarios lists the scenarios; --help and the docs are made from it.
var benchScenarios = []benchScenario{
	{name: "e2e", events: 20000, flags: []string{"events", "keys", "cpuprofile"},
		about: "events written to the events topic, signed, POSTed to a local receiver, attempts recorded, offsets committed: deliveries/s against the raw loopback POST rate of the same run (ratio), peak RSS",
		run:   benchE2E},
	{name: "keys", events: 100000, flags: []string{"events", "keys", "cpuprofile"},
		about: "e2e over 100,000 ordering keys: deliveries/s, ratio, peak RSS",
		defaults: func(o *benchOptions, _ *config.Config) {
			if !o.set["keys"] {
				o.keys = 100000
			}
		},
		run: benchE2E},
	{name: "tiers", events: 50000, flags: []string{"events", "rate", "retry-after", "retry-after-share"},
		about: "retry tiers full (tiers scaled by 0.2, no circuit breaking): lateness of tier attempts against their due times while --retry-after-share of the events wait behind a long Retry-After, peak records waiting, peak RSS",
		defaults: func(o *benchOptions, cfg *config.Config) {
			if !o.set["tier-scale"] {
				cfg.TierScale = 0.2
			}
			// The endpoint fails most requests by design: a circuit breaker
			// would skip them and measure the breaker, not the tiers.
			if !o.set["breaker-threshold"] {
				cfg.BreakerThreshold = math.MaxInt32
			}
		},
		run: benchTiersScenario},
	{name: "ingest", events: 20000, flags: []string{"events", "keys", "clients", "batch-size", "cpuprofile"},
		about: "events of about 500 B through the HTTP ingest API (authenticated, no token rate limit), single (POST /v1/events) and batch (/v1/events/batch) from --clients keep-alive clients, each timed until delivered, beside direct Kafka produce and the raw loopback POST rate (at --clients) of the same run: accepted/s, end-to-end/s, ratios",
		run:   benchIngest},
	{name: "slow", events: 20000, flags: []string{"events", "keys", "endpoints", "slow-share", "slow-timeout"},
		about: "events spread over --endpoints, --slow-share of which hang until their timeout (--slow-timeout): the healthy endpoints' deliveries/s against the same number of healthy events without the slow ones, earlier in the same run (ratio); circuit breaking as configured",
		run:   benchSlow},
	{name: "scale", events: 50000, flags: []string{"events", "keys", "children"},
		about: "one `hookline serve` child process, then --children of them in the same consumer groups, on the Kafka of --brokers (required): deliveries/s of each process and together, beside the receiver's raw capacity measured in the same run (to show the receiver was not the bound)",
		run:   benchScale},
}

func benchScenarioByName(name string) (benchScenario, bool) {
	for _, s := range benchScenarios {
		if s.name == name {
			return s, true
		}
	}
	return benchScenario{}, false
}

func benchAbout() string {
	var b strings.Builder
	b.WriteString(`Measures hookline's speed in one of several scenarios, each against a
baseline measured in the same run on the same machine. Ratios, not absolute
figures, are what to compare between machines (docs/performance.md).
Pipeline settings (--partitions, --concurrency, --brokers...) apply to every
scenario; with no --brokers the embedded broker runs in this process.

Scenarios (--scenario NAME; its bench flags; --events default):
`)
	for _, s := range benchScenarios {
		fmt.Fprintf(&b, "  %-7s %s\n", s.name, wrapText(s.about, 70, "          "))
		fmt.Fprintf(&b, "          flags: --%s; --events %d by default\n", strings.Join(s.flags, ", --"), s.events)
	}
	b.WriteString("  all     every scenario in turn (scale only with --brokers); with --json one object per line")
	return b.String()
}

func runBench(ctx context.Context, args []string) error {
	return benchMain(ctx, args, os.Stdout)
}

// benchMain is runBench printing its reports to out.
func benchMain(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("bench", benchAbout())
	d, cleanup, err := localDefaults("bench")
	if err != nil {
		return err
	}
	defer cleanup()
	d.LogLevel = "warn"
	// The bench receiver listens on 127.0.0.1, which the SSRF guard refuses
	// by default.
	d.AllowPrivateDestinations = true
	d.RegisterFlags(fs)
	o := benchOptions{out: out, progress: os.Stderr, executable: os.Executable}
	scenario := fs.String("scenario", "e2e", "`name` of the scenario: "+strings.Join(benchNames(), ", ")+" or all")
	fs.IntVar(&o.events, "events", 0, "events to deliver (default: the scenario's, listed above)")
	fs.IntVar(&o.keys, "keys", 512, "e2e, keys, ingest, slow, scale: distinct ordering keys (keys: default 100000)")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "e2e, keys: write a CPU profile of the pipeline phase to `file`; ingest: of the single-event phase")
	fs.IntVar(&o.rate, "rate", 350, "tiers: events produced per second")
	fs.StringVar(&o.retryAfter, "retry-after", "3600", "tiers: the Retry-After of the limited endpoint")
	fs.Float64Var(&o.share, "retry-after-share", 0.1, "tiers: share of the events sent to the limited endpoint")
	fs.IntVar(&o.clients, "clients", 64, "ingest: concurrent keep-alive API clients (and the raw baseline's concurrency)")
	fs.IntVar(&o.batchSize, "batch-size", 100, "ingest: events per /v1/events/batch request")
	fs.IntVar(&o.endpoints, "endpoints", 50, "slow: endpoints the events are spread over")
	fs.Float64Var(&o.slowShare, "slow-share", 0.1, "slow: share of the endpoints that hang until their timeout")
	fs.DurationVar(&o.slowTimeout, "slow-timeout", 2*time.Second, "slow: request timeout of the hanging endpoints")
	fs.IntVar(&o.children, "children", 2, "scale: serve processes of the second phase")
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		o.set[f.Name] = true
		if !benchOwnFlags[f.Name] && !serveChildFlags[f.Name] {
			o.childArgs = append(o.childArgs, "--"+f.Name+"="+f.Value.String())
		}
	})
	if *scenario == "all" {
		for _, s := range benchScenarios {
			if s.name == "scale" && cfg.Embedded() {
				fmt.Fprintln(o.progress, "bench: all: skipping scale, which needs --brokers")
				continue
			}
			// Each scenario's embedded broker keeps its data apart: one
			// would find the endpoints and topics of the one before.
			sc := cfg
			sc.DataDir = filepath.Join(cfg.DataDir, s.name)
			if err := runBenchScenario(ctx, s, sc, o); err != nil {
				return fmt.Errorf("scenario %s: %w", s.name, err)
			}
		}
		return nil
	}
	s, ok := benchScenarioByName(*scenario)
	if !ok {
		return fmt.Errorf("--scenario: %q is none of %s, all", *scenario, strings.Join(benchNames(), ", "))
	}
	return runBenchScenario(ctx, s, cfg, o)
}

// benchOwnFlags are the bench's flags, which a serve process does not have.
var benchOwnFlags = map[string]bool{"scenario": true, "events": true, "keys": true, "json": true, "cpuprofile": true,
	"rate": true, "retry-after": true, "retry-after-share": true, "clients": true, "batch-size": true,
	"endpoints": true, "slow-share": true, "slow-timeout": true, "children": true}

// serveChildFlags are the settings the scale scenario gives its serve
// processes itself; every other setting given to the bench goes to them
// as given.
var serveChildFlags = map[string]bool{"brokers": true, "topic-prefix": true, "partitions": true, "concurrency": true,
	"listen": true, "metrics-listen": true, "data-dir": true, "kafka-listen": true, "allow-private-destinations": true, "log-level": true}

func benchNames() []string {
	out := make([]string, len(benchScenarios))
	for i, s := range benchScenarios {
		out[i] = s.name
	}
	return out
}

// runBenchScenario applies the scenario's defaults to what the command line
// left unset, runs it and prints its report.
func runBenchScenario(ctx context.Context, s benchScenario, cfg config.Config, o benchOptions) error {
	o.scenario = s.name
	if !o.set["events"] {
		o.events = s.events
	}
	if s.defaults != nil {
		s.defaults(&o, &cfg)
	}
	if o.events < 1 || o.keys < 1 {
		return errors.New("--events and --keys must be at least 1")
	}
	rep, err := s.run(ctx, cfg, o)
	if err != nil {
		return err
	}
	if o.asJSON {
		return json.NewEncoder(o.out).Encode(rep)
	}
	rep.table(o.out)
	return nil
}

// wrapText breaks s into lines of at most width characters, every line
// after the first indented by indent.
func wrapText(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
