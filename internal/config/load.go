package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable hookline reads.
const EnvPrefix = "HOOKLINE_"

// EnvConfig names the YAML file to read when --config is not given.
const EnvConfig = EnvPrefix + "CONFIG"

// field is one setting: its YAML key (the flag and environment names derive
// from it) and how to parse and print it. Flags and environment variables go
// through the same parser, so they accept the same syntax.
type field struct {
	name  string
	usage string
	set   func(c *Config, s string) error
	get   func(c *Config) string
	// isBool lets the flag stand alone: --allow-private-destinations.
	isBool bool
}

func (f field) flagName() string { return strings.ReplaceAll(f.name, "_", "-") }
func (f field) envName() string  { return EnvPrefix + strings.ToUpper(f.name) }

func bind[T any](name, usage string, ptr func(*Config) *T, parse func(string) (T, error), format func(T) string) field {
	return field{
		name:  name,
		usage: usage,
		set: func(c *Config, s string) error {
			v, err := parse(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			*ptr(c) = v
			return nil
		},
		get: func(c *Config) string { return format(*ptr(c)) },
	}
}

func str(name, usage string, ptr func(*Config) *string) field {
	return bind(name, usage, ptr, func(s string) (string, error) { return s, nil }, func(s string) string { return s })
}

func boolean(name, usage string, ptr func(*Config) *bool) field {
	f := bind(name, usage, ptr, func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("invalid boolean %q (want true or false)", s)
		}
		return b, nil
	}, strconv.FormatBool)
	f.isBool = true
	return f
}

// secret is a string setting whose value is never printed (flag defaults,
// help output).
func secret(name, usage string, ptr func(*Config) *string) field {
	f := str(name, usage, ptr)
	f.get = func(c *Config) string {
		if *ptr(c) == "" {
			return ""
		}
		return "(set)"
	}
	return f
}

func integer(name, usage string, ptr func(*Config) *int) field {
	return bind(name, usage, ptr, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("invalid integer %q", s)
		}
		return n, nil
	}, strconv.Itoa)
}

func float(name, usage string, ptr func(*Config) *float64) field {
	return bind(name, usage, ptr, func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid number %q", s)
		}
		return f, nil
	}, func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) })
}

func duration(name, usage string, ptr func(*Config) *time.Duration) field {
	return bind(name, usage, ptr, parseDuration, formatDuration)
}

func list(name, usage string, ptr func(*Config) *[]string) field {
	return bind(name, usage, ptr, func(s string) ([]string, error) { return splitList(s), nil },
		func(l []string) string { return strings.Join(l, ",") })
}

func durations(name, usage string, ptr func(*Config) *[]time.Duration) field {
	return bind(name, usage, ptr, func(s string) ([]time.Duration, error) {
		parts := splitList(s)
		out := make([]time.Duration, len(parts))
		for i, p := range parts {
			d, err := parseDuration(p)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = d
		}
		return out, nil
	}, func(ds []time.Duration) string {
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = formatDuration(d)
		}
		return strings.Join(s, ",")
	})
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a Go duration such as 30s, 2m, 1h30m)", s)
	}
	return d, nil
}

// formatDuration prints d without zero trailing units: 2m rather than 2m0s,
// 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// fields lists every setting once. A test checks it against the yaml tags
// of Config and against example.yaml.
var fields = []field{
	list("brokers", "comma-separated `host:port` seed brokers of a Kafka cluster; empty starts the embedded development broker", func(c *Config) *[]string { return &c.Brokers }),
	str("kafka_listen", "listen `address` of the embedded broker", func(c *Config) *string { return &c.KafkaListen }),
	str("data_dir", "`directory` for the embedded broker's data", func(c *Config) *string { return &c.DataDir }),
	boolean("kafka_tls", "connect to the brokers over TLS", func(c *Config) *bool { return &c.KafkaTLS }),
	str("kafka_tls_ca_file", "PEM `file` of the CAs that sign the brokers' certificates (default: system roots)", func(c *Config) *string { return &c.KafkaTLSCAFile }),
	str("kafka_tls_cert_file", "PEM client certificate `file` for brokers that require one", func(c *Config) *string { return &c.KafkaTLSCertFile }),
	str("kafka_tls_key_file", "PEM client key `file` of kafka_tls_cert_file", func(c *Config) *string { return &c.KafkaTLSKeyFile }),
	str("kafka_tls_server_name", "`name` the brokers' certificates must carry (default: each broker's host)", func(c *Config) *string { return &c.KafkaTLSServerName }),
	boolean("kafka_tls_insecure_skip_verify", "accept any broker certificate (testing only: the cluster can be impersonated)", func(c *Config) *bool { return &c.KafkaTLSInsecureSkipVerify }),
	str("kafka_sasl_mechanism", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL", func(c *Config) *string { return &c.KafkaSASLMechanism }),
	str("kafka_sasl_username", "SASL `user` name", func(c *Config) *string { return &c.KafkaSASLUsername }),
	secret("kafka_sasl_password", "SASL `password`; prefer the environment variable", func(c *Config) *string { return &c.KafkaSASLPassword }),
	str("topic_prefix", "`prefix` of every topic name", func(c *Config) *string { return &c.TopicPrefix }),
	integer("partitions", "partitions of the events, retry tier, DLQ and attempts topics", func(c *Config) *int { return &c.Partitions }),
	integer("replication_factor", "replication factor of created topics; -1 is the broker default", func(c *Config) *int { return &c.ReplicationFactor }),
	durations("tiers", "comma-separated retry tier `delays`; they name the tier topics", func(c *Config) *[]time.Duration { return &c.Tiers }),
	float("tier_scale", "multiplies every tier delay (topic names stay the same)", func(c *Config) *float64 { return &c.TierScale }),
	integer("max_attempts", "delivery attempts before the DLQ; 0 is one per tier plus the first", func(c *Config) *int { return &c.MaxAttempts }),
	float("jitter", "random fraction (0 to 0.5) added to each tier delay", func(c *Config) *float64 { return &c.Jitter }),
	str("listen", "ingest and admin HTTP API listen `address`", func(c *Config) *string { return &c.Listen }),
	str("metrics_listen", "Prometheus metrics listen `address`", func(c *Config) *string { return &c.MetricsListen }),
	integer("max_payload_bytes", "largest event payload ingest accepts, in bytes", func(c *Config) *int { return &c.MaxPayloadBytes }),
	duration("idempotency_window", "how long ingest remembers an idempotency key", func(c *Config) *time.Duration { return &c.IdempotencyWindow }),
	duration("endpoint_timeout", "per-request timeout for endpoints that set none", func(c *Config) *time.Duration { return &c.EndpointTimeout }),
	integer("concurrency", "concurrent deliveries per partition (records of different keys)", func(c *Config) *int { return &c.Concurrency }),
	integer("max_idle_conns_per_host", "kept-alive connections per endpoint host kept for reuse; 0 is partitions x concurrency", func(c *Config) *int { return &c.MaxIdleConnsPerHost }),
	integer("max_in_flight", "records held per partition (its read-ahead window) before fetching pauses", func(c *Config) *int { return &c.MaxInFlight }),
	integer("max_in_flight_bytes", "bytes held per partition (its read-ahead window) before fetching pauses", func(c *Config) *int { return &c.MaxInFlightBytes }),
	integer("breaker_threshold", "consecutive failures that open an endpoint's circuit breaker", func(c *Config) *int { return &c.BreakerThreshold }),
	duration("breaker_cooldown", "how long an open circuit breaker waits before a trial request", func(c *Config) *time.Duration { return &c.BreakerCooldown }),
	integer("metrics_endpoint_labels", "endpoints with their own series in the per-endpoint metrics (later ones count as _other); 0 turns the label off", func(c *Config) *int { return &c.MetricsEndpointLabels }),
	duration("endpoint_disable_after", "how long an endpoint that sets no disable_after may fail without a success before it is disabled; 0 never", func(c *Config) *time.Duration { return &c.EndpointDisableAfter }),
	integer("failing_after", "failed requests in a row that make an endpoint failing (an endpoint.failing event); 0: only its breaker opening", func(c *Config) *int { return &c.FailingAfter }),
	str("operator_webhook", "`URL` operational events are POSTed to, signed with operator_webhook_secret (docs/operational-events.md)", func(c *Config) *string { return &c.OperatorWebhook }),
	secret("operator_webhook_secret", "Standard Webhooks `secret` (whsec_...) that signs operational events; prefer the environment variable", func(c *Config) *string { return &c.OperatorWebhookSecret }),
	duration("shutdown_grace", "how long a graceful shutdown may take", func(c *Config) *time.Duration { return &c.ShutdownGrace }),
	str("instance_id", "`id` of this process, used in transactional ids", func(c *Config) *string { return &c.InstanceID }),
	str("clickhouse", "ClickHouse native protocol `address`; empty disables the attempt sink", func(c *Config) *string { return &c.ClickHouse }),
	str("clickhouse_database", "ClickHouse `database` of the attempts tables", func(c *Config) *string { return &c.ClickHouseDatabase }),
	str("clickhouse_username", "ClickHouse `user`", func(c *Config) *string { return &c.ClickHouseUsername }),
	secret("clickhouse_password", "ClickHouse `password`; prefer the environment variable", func(c *Config) *string { return &c.ClickHousePassword }),
	boolean("clickhouse_tls", "connect to ClickHouse over TLS (its secure native port, usually 9440)", func(c *Config) *bool { return &c.ClickHouseTLS }),
	str("clickhouse_tls_ca_file", "PEM `file` of the CAs that sign ClickHouse's certificate (default: system roots)", func(c *Config) *string { return &c.ClickHouseTLSCAFile }),
	boolean("clickhouse_tls_insecure_skip_verify", "accept any ClickHouse certificate (testing only)", func(c *Config) *bool { return &c.ClickHouseTLSInsecureSkipVerify }),
	duration("analytics_retention", "how long ClickHouse keeps attempt rows, whole days (2160h = 90 days)", func(c *Config) *time.Duration { return &c.AnalyticsRetention }),
	duration("analytics_rollup_retention", "how long ClickHouse keeps the per-minute rollup, whole days (9600h = 400 days)", func(c *Config) *time.Duration { return &c.AnalyticsRollupRetention }),
	secret("outbox_postgres", "PostgreSQL `DSN` whose outbox table serve relays to the events topic; empty: no relay (docs/outbox.md)", func(c *Config) *string { return &c.OutboxPostgres }),
	str("outbox_table", "`name` of the outbox table", func(c *Config) *string { return &c.OutboxTable }),
	integer("outbox_batch", "most outbox rows relayed in one Kafka transaction", func(c *Config) *int { return &c.OutboxBatch }),
	duration("outbox_poll", "how long the outbox relay waits after a poll that found fewer than outbox_batch rows", func(c *Config) *time.Duration { return &c.OutboxPoll }),
	boolean("allow_private_destinations", "let deliveries reach loopback, private and link-local addresses (local development only)", func(c *Config) *bool { return &c.AllowPrivateDestinations }),
	list("allow_destinations", "comma-separated `CIDRs` deliveries may reach although private or otherwise refused", func(c *Config) *[]string { return &c.AllowDestinations }),
	secret("secret_key", "base64 of a 32-byte `key` that encrypts endpoint secrets at rest; comma-separated keys rotate it (the first encrypts)", func(c *Config) *string { return &c.SecretKey }),
	str("secret_key_file", "`file` holding the secret_key(s), one per line", func(c *Config) *string { return &c.SecretKeyFile }),
	bind("tokens", "comma-separated API tokens `sha256hex:scope+scope[:tenant+tenant[:name]]`, scopes ingest and admin", func(c *Config) *[]Token { return &c.Tokens }, parseTokens, formatTokens),
	float("token_rate_limit", "requests per second each API token may make; 0 is unlimited", func(c *Config) *float64 { return &c.TokenRateLimit }),
	integer("token_burst", "requests an API token may make at once above token_rate_limit", func(c *Config) *int { return &c.TokenBurst }),
	boolean("insecure_no_auth", "let the API listen on a non-loopback address without tokens, open to anyone who can reach it", func(c *Config) *bool { return &c.InsecureNoAuth }),
	duration("http_read_header_timeout", "how long an HTTP client may take to send a request's headers", func(c *Config) *time.Duration { return &c.HTTPReadHeaderTimeout }),
	duration("http_read_timeout", "how long an HTTP client may take to send a whole request, body included", func(c *Config) *time.Duration { return &c.HTTPReadTimeout }),
	duration("http_write_timeout", "how long an HTTP request may take from the end of its headers to the end of its answer", func(c *Config) *time.Duration { return &c.HTTPWriteTimeout }),
	duration("http_idle_timeout", "how long an idle HTTP keep-alive connection stays open", func(c *Config) *time.Duration { return &c.HTTPIdleTimeout }),
	integer("http_max_connections", "connections each HTTP listener serves at once; more wait", func(c *Config) *int { return &c.HTTPMaxConnections }),
	str("log_level", "log `level`: debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
	str("log_format", "log `format`: text or json", func(c *Config) *string { return &c.LogFormat }),
}

// registration ties the flags registered on one FlagSet together, so that
// Load finds the defaults they were registered with.
type registration struct {
	base Config
	path string // --config, when given
	// given holds the YAML keys of the settings the last Load found in
	// the file, the environment or the flags.
	given map[string]bool
}

// flagValue is a setting's flag. It keeps the raw text; Load applies it
// after the file and environment so that precedence holds.
type flagValue struct {
	f   field
	reg *registration
	raw string
}

func (v *flagValue) String() string {
	if v == nil || v.reg == nil {
		return ""
	}
	return v.f.get(&v.reg.base)
}

// IsBoolFlag lets a boolean setting's flag be given without a value.
func (v *flagValue) IsBoolFlag() bool { return v.f.isBool }

func (v *flagValue) Set(s string) error {
	var scratch Config
	if err := v.f.set(&scratch, s); err != nil {
		return err
	}
	v.raw = s
	return nil
}

type configFlag struct{ reg *registration }

func (v *configFlag) String() string {
	if v == nil || v.reg == nil {
		return ""
	}
	return v.reg.path
}

func (v *configFlag) Set(s string) error {
	v.reg.path = s
	return nil
}

// RegisterFlags registers --config and a flag for every setting on fs. The
// values of c are the defaults the flags show and the values Load starts
// from, beneath the file, the environment and the flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	reg := &registration{base: c.clone()}
	fs.Var(&configFlag{reg}, "config", "YAML config `file` (env "+EnvConfig+")")
	for _, f := range fields {
		fs.Var(&flagValue{f: f, reg: reg}, f.flagName(), f.usage+" (env "+f.envName()+")")
	}
}

// Load parses args with fs and returns the validated configuration: the
// defaults, overridden by the YAML file named by --config (or HOOKLINE_CONFIG),
// then by HOOKLINE_* environment variables, then by the flags given in args.
//
// If fs has no hookline flags yet, Load registers them with Default(). A
// subcommand registers its own flags on fs before calling Load; they are
// parsed along with ours. getenv is os.Getenv in production; nil means
// os.Getenv.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	reg, err := registered(fs)
	if err != nil {
		return Config{}, err
	}
	if reg == nil {
		d := Default()
		d.RegisterFlags(fs)
		if reg, err = registered(fs); err != nil {
			return Config{}, err
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}

	cfg := reg.base.clone()
	reg.given = map[string]bool{}
	path := reg.path
	if path == "" {
		path = strings.TrimSpace(getenv(EnvConfig))
	}
	if path != "" {
		if err := readFile(path, &cfg, reg.given); err != nil {
			return Config{}, err
		}
	}
	for _, f := range fields {
		v := getenv(f.envName())
		if v == "" {
			continue
		}
		if err := f.set(&cfg, v); err != nil {
			return Config{}, fmt.Errorf("%s: %w", f.envName(), err)
		}
		reg.given[f.name] = true
	}
	fs.Visit(func(fl *flag.Flag) {
		v, ok := fl.Value.(*flagValue)
		if !ok || v.reg != reg || err != nil {
			return
		}
		if serr := v.f.set(&cfg, v.raw); serr != nil {
			err = fmt.Errorf("--%s: %w", fl.Name, serr)
		}
		reg.given[v.f.name] = true
	})
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid config: %w", err)
	}
	return cfg, nil
}

// Given reports whether the last Load on fs found the setting (its YAML
// key, such as analytics_retention) in the file, the environment or the
// flags, rather than leaving it at its default. A command for which "not
// set" means "leave as it is" asks it.
func Given(fs *flag.FlagSet, name string) bool {
	reg, err := registered(fs)
	return err == nil && reg != nil && reg.given[name]
}

func registered(fs *flag.FlagSet) (*registration, error) {
	fl := fs.Lookup("config")
	if fl == nil {
		return nil, nil
	}
	v, ok := fl.Value.(*configFlag)
	if !ok {
		return nil, errors.New("flag --config is registered, but not by config.RegisterFlags")
	}
	return v.reg, nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// readFile decodes the YAML file at path over cfg and notes its keys in
// given. Keys it does not know are an error, since a typo would otherwise
// silently keep a default.
func readFile(path string, cfg *Config, given map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var keys map[string]yaml.Node
	if yaml.Unmarshal(b, &keys) == nil {
		for k := range keys {
			given[k] = true
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = unknownField.ReplaceAllString(m, `unknown key "$1"`)
			}
			return fmt.Errorf("config file %s: %s", path, strings.Join(msgs, "; "))
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func (c Config) clone() Config {
	c.Brokers = append([]string(nil), c.Brokers...)
	c.Tiers = append([]time.Duration(nil), c.Tiers...)
	c.AllowDestinations = append([]string(nil), c.AllowDestinations...)
	if c.Tokens != nil {
		c.Tokens = append([]Token(nil), c.Tokens...)
	}
	return c
}
