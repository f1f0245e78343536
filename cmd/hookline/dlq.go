package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dlq"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/topics"
)

// dlqCommand is `hookline dlq`: its verbs, their flags and what each runs
// (dlq_verbs.go).
var dlqCommand = verbs[dlqFlags]{
	name: "dlq",
	about: `Reads and re-drives the dead-letter topic directly through Kafka (--brokers,
or the embedded broker of a running 'hookline serve' at --kafka-listen). It
reads the DLQ partitions directly, never in a consumer group, up to their
end as of the start: it disturbs nothing and streams, however deep the DLQ.`,
	footer: `Filters of list, stats, replay and skip (a comma-separated list matches any value):
  --event-id ID,...     --endpoint ID,...     --tenant T,...
  --type T,... (order.* matches a prefix)     --error-class http_5xx,timeout,...
  --status 503,4xx,0 (0: no response)         --min-attempts N
  --since/--until  when the pair was dead-lettered: 2026-01-02T15:04:05Z,
                   2026-01-02, or a duration ago (90m)
  --limit N        stop after N matches
`,
	verbs: []verb[dlqFlags]{
		{name: "list", summary: "one line per dead-lettered (event, endpoint) pair; --json: one JSON object per line",
			flags: func(fs *flag.FlagSet, o *dlqFlags) { o.filter.register(fs); o.jsonFlag(fs) }, run: dlqList},
		{name: "show", args: "<event-id | partition:offset>", summary: "headers, payload and attempts of each record (attempts from ClickHouse too when --clickhouse is set)",
			flags: func(fs *flag.FlagSet, o *dlqFlags) { o.jsonFlag(fs) }, run: dlqShow},
		{name: "stats", summary: "counts by endpoint, error class and age",
			flags: func(fs *flag.FlagSet, o *dlqFlags) { o.filter.register(fs); o.jsonFlag(fs) }, run: dlqStats},
		{name: "replay", summary: "send the matching records back, keeping their event ids",
			help: `--to events (default): re-enter as a new event for the same endpoint; --to retry:
into the first retry tier, due now. --replay-id names the replay; the same ID again
resumes an interrupted replay and sends nothing twice. --operator is self-declared,
so with SASL the audit also records the Kafka user.
A pair that holds its key at a strict endpoint (on_dead_letter hold) is not sent
anew: the key's release is, and the strict stage attempts it again in its key's
place; the rest of the key follows once it is delivered.`,
			flags: func(fs *flag.FlagSet, o *dlqFlags) {
				o.filter.register(fs)
				fs.StringVar(&o.to, "to", "", "`target`: events (default) or retry (the first retry tier)")
				o.replayFlags(fs)
			}, run: dlqReplay},
		{name: "skip", summary: "release the keys the matching pairs hold at strict endpoints (on_dead_letter hold) without delivering them",
			help: "The flags of replay but --to; audited like a replay. Pairs that hold no key are skipped.",
			flags: func(fs *flag.FlagSet, o *dlqFlags) {
				o.filter.register(fs)
				o.to = string(dlq.TargetSkip)
				o.replayFlags(fs)
			}, run: dlqReplay},
		{name: "replays", summary: "every replay and skip from the audit trail: who, when, what, how many, outcome",
			flags: func(fs *flag.FlagSet, o *dlqFlags) { o.jsonFlag(fs) }, run: dlqReplays},
		{name: "held", summary: "the keys of strict endpoints held by an event that failed, since when, its attempts and when it is tried next",
			flags: func(fs *flag.FlagSet, o *dlqFlags) {
				fs.StringVar(&o.filter.endpoints, "endpoint", "", "comma-separated endpoint `ids`")
				o.jsonFlag(fs)
			}, run: dlqHeld},
		// Fills the DLQ with synthetic records to measure the tooling on a
		// deep DLQ. Never for a production cluster.
		{name: "generate", hidden: true, summary: "write synthetic records to the DLQ (measuring only)",
			flags: func(fs *flag.FlagSet, o *dlqFlags) { fs.IntVar(&o.count, "count", 1000, "records to write") }, run: dlqGenerate},
	},
}

func runDLQ(ctx context.Context, args []string) error {
	return dlqCommand.run(ctx, args)
}

// dlqFlags are the values of the dlq verbs' flags.
type dlqFlags struct {
	filter                 dlqFilterFlags
	asJSON, dryRun         bool
	to, replayID, operator string
	rate                   float64
	count                  int
}

func (o *dlqFlags) jsonFlag(fs *flag.FlagSet) {
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
}

// replayFlags registers the flags replay and skip share.
func (o *dlqFlags) replayFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.dryRun, "dry-run", false, "show what would be sent; send and record nothing")
	fs.Float64Var(&o.rate, "rate", 0, "at most `n` records per second (0: no limit)")
	fs.StringVar(&o.replayID, "replay-id", "", "replay `id`; an existing one resumes that replay (default: generated)")
	fs.StringVar(&o.operator, "operator", os.Getenv("USER"), "`name` of who replays, for the audit trail")
}

// dlqSession is a connection to the cluster for a dlq verb.
type dlqSession struct {
	cl     *kgo.Client
	seeds  []string
	secure []kgo.Opt
	topics topics.Set
}

func openDLQSession(cfg config.Config) (*dlqSession, error) {
	cl, secure, set, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	return &dlqSession{cl: cl, seeds: seeds, secure: secure, topics: set}, nil
}

// client opens the DLQ client. tenants reads the endpoints topic first, so
// that entries show their endpoint's tenant.
func (s *dlqSession) client(ctx context.Context, cfg config.Config, tenants bool) (*dlq.Client, func(), error) {
	dcfg := dlq.Config{Brokers: s.seeds, ClientOpts: s.secure, Topics: s.topics, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if !cfg.Embedded() && cfg.SASLMechanism() != "" {
		// The brokers checked this name; --operator is only declared.
		dcfg.KafkaUser = cfg.KafkaSASLUsername
	}
	stop := func() {}
	if tenants {
		reg := endpoints.NewRegistry(s.cl, s.topics.Endpoints, slog.New(slog.DiscardHandler))
		var err error
		if stop, err = startRegistry(ctx, reg, s.topics.Endpoints); err != nil {
			return nil, nil, err
		}
		dcfg.TenantOf = func(id string) string {
			e, _ := reg.Get(id)
			return e.Tenant
		}
	}
	d, err := dlq.New(dcfg)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return d, func() { d.Close(); stop() }, nil
}

func (s *dlqSession) close() { s.cl.Close() }
