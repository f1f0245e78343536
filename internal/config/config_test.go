package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("hookline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !c.Embedded() {
		t.Error("no brokers must mean the embedded broker")
	}
	if got := c.Attempts(); got != 5 {
		t.Errorf("Attempts() = %d, want 5 (4 tiers + first)", got)
	}
	if c.InstanceID == "" || c.InstanceID == Default().InstanceID {
		t.Errorf("instance ids must be set and differ per call, got %q", c.InstanceID)
	}
}

func TestTierDelaysAndAttempts(t *testing.T) {
	c := Default()
	c.TierScale = 0.01
	want := []time.Duration{300 * time.Millisecond, 1200 * time.Millisecond, 6 * time.Second, 36 * time.Second}
	if got := c.TierDelays(); !reflect.DeepEqual(got, want) {
		t.Errorf("TierDelays() = %v, want %v", got, want)
	}
	if c.Tiers[0] != 30*time.Second {
		t.Errorf("TierDelays modified Tiers: %v", c.Tiers)
	}
	c.MaxAttempts = 2
	if got := c.Attempts(); got != 2 {
		t.Errorf("Attempts() = %d, want 2", got)
	}
}

func TestIdleConnsPerHost(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		partitions, concurrency, set int
		want                         int
	}{
		{"defaults: partitions x concurrency", 8, 32, 0, 256},
		{"follows the layout", 3, 10, 0, 30},
		{"set explicitly", 8, 32, 1000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Partitions, c.Concurrency, c.MaxIdleConnsPerHost = tc.partitions, tc.concurrency, tc.set
			if got := c.IdleConnsPerHost(); got != tc.want {
				t.Errorf("IdleConnsPerHost() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"external brokers", func(c *Config) { c.Brokers = []string{"k1:9092", "k2:9092"}; c.DataDir = "" }, ""},
		{"broker without port", func(c *Config) { c.Brokers = []string{"k1:9092", "k2"} }, "brokers[1]: want host:port"},
		{"broker port zero", func(c *Config) { c.Brokers = []string{"k1:0"} }, "brokers[0]: invalid port"},
		{"embedded without data dir", func(c *Config) { c.DataDir = " " }, "data_dir: must not be empty"},
		{"bad kafka listen", func(c *Config) { c.KafkaListen = "localhost" }, "kafka_listen: want host:port"},
		{"listen any port", func(c *Config) { c.Listen = ":0"; c.MetricsListen = ":0"; c.InsecureNoAuth = true }, ""},
		{"open API on all interfaces", func(c *Config) { c.Listen = ":8080" }, "listen: :8080 is reachable from other hosts"},
		{"open API on a public address", func(c *Config) { c.Listen = "10.1.2.3:8080" }, "listen: 10.1.2.3:8080 is reachable from other hosts"},
		{"API on all interfaces with tokens", func(c *Config) {
			c.Listen = "0.0.0.0:8080"
			c.Tokens = []Token{{Hash: HashToken("t"), Scopes: []string{ScopeIngest}}}
		}, ""},
		{"open API on localhost", func(c *Config) { c.Listen = "localhost:8080" }, ""},
		{"open API on IPv6 loopback", func(c *Config) { c.Listen = "[::1]:8080" }, ""},
		{"open API on 127.0.0.2", func(c *Config) { c.Listen = "127.0.0.2:8080" }, ""},
		{"partitions zero", func(c *Config) { c.Partitions = 0 }, "partitions: must be between 1 and 10000"},
		{"partitions too many", func(c *Config) { c.Partitions = 10001 }, "partitions: must be between 1 and 10000"},
		{"replication zero", func(c *Config) { c.ReplicationFactor = 0 }, "replication_factor: must be -1"},
		{"replication three", func(c *Config) { c.ReplicationFactor = 3 }, ""},
		{"tier not positive", func(c *Config) { c.Tiers[2] = 0 }, "tiers[2]: delay must be positive"},
		{"tier not increasing", func(c *Config) { c.Tiers[1] = 30 * time.Second }, "tiers[1]: delay 30s must be longer than tiers[0] (30s)"},
		{"no tiers", func(c *Config) { c.Tiers = nil }, ""},
		{"tier scale zero", func(c *Config) { c.TierScale = 0 }, "tier_scale: must be a positive number"},
		{"tier scale to nothing", func(c *Config) { c.Tiers = []time.Duration{time.Nanosecond}; c.TierScale = 0.1 }, "tiers[0]: delay 1ns scaled by tier_scale 0.1 is zero"},
		{"max attempts too many", func(c *Config) { c.MaxAttempts = 6 }, "max_attempts: must be 0 (one per tier plus the first) or between 1 and 5"},
		{"max attempts negative", func(c *Config) { c.MaxAttempts = -1 }, "max_attempts:"},
		{"max attempts one", func(c *Config) { c.MaxAttempts = 1 }, ""},
		{"jitter high", func(c *Config) { c.Jitter = 0.6 }, "jitter: must be between 0 and 0.5"},
		{"jitter negative", func(c *Config) { c.Jitter = -0.1 }, "jitter:"},
		{"listen clash", func(c *Config) { c.MetricsListen = "0.0.0.0:8080" }, "metrics_listen: must differ from listen"},
		{"kafka listen clash", func(c *Config) { c.KafkaListen = c.Listen }, "kafka_listen: must differ from listen"},
		{"kafka listen ignored with brokers", func(c *Config) { c.Brokers = []string{"k:9092"}; c.KafkaListen = c.Listen }, ""},
		{"payload zero", func(c *Config) { c.MaxPayloadBytes = 0 }, "max_payload_bytes: must be between 1 and 1048576"},
		{"payload too big", func(c *Config) { c.MaxPayloadBytes = 2 << 20 }, "max_payload_bytes:"},
		{"idempotency window", func(c *Config) { c.IdempotencyWindow = 0 }, "idempotency_window: must be positive"},
		{"endpoint timeout", func(c *Config) { c.EndpointTimeout = -time.Second }, "endpoint_timeout: must be positive"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "concurrency: must be at least 1"},
		{"idle conns negative", func(c *Config) { c.MaxIdleConnsPerHost = -1 }, "max_idle_conns_per_host: must not be negative"},
		{"in flight below concurrency", func(c *Config) { c.MaxInFlight = 10 }, "max_in_flight: must be at least concurrency (32)"},
		{"in flight bytes zero", func(c *Config) { c.MaxInFlightBytes = 0 }, "max_in_flight_bytes: must be at least 1"},
		{"breaker threshold", func(c *Config) { c.BreakerThreshold = 0 }, "breaker_threshold:"},
		{"negative endpoint labels", func(c *Config) { c.MetricsEndpointLabels = -1 }, "metrics_endpoint_labels:"},
		{"unbounded endpoint labels", func(c *Config) { c.MetricsEndpointLabels = 1 << 20 }, "metrics_endpoint_labels:"},
		{"breaker cooldown", func(c *Config) { c.BreakerCooldown = 0 }, "breaker_cooldown:"},
		{"shutdown grace", func(c *Config) { c.ShutdownGrace = 0 }, "shutdown_grace:"},
		{"instance id empty", func(c *Config) { c.InstanceID = "" }, "instance_id: must not be empty"},
		{"instance id space", func(c *Config) { c.InstanceID = "a b" }, "instance_id: must not contain spaces"},
		{"topic prefix chars", func(c *Config) { c.TopicPrefix = "hook/line" }, "topic_prefix: may only contain"},
		{"topic prefix empty", func(c *Config) { c.TopicPrefix = "" }, ""},
		{"clickhouse addr", func(c *Config) { c.ClickHouse = "clickhouse" }, "clickhouse: want host:port"},
		{"clickhouse ok", func(c *Config) { c.ClickHouse = "127.0.0.1:9000" }, ""},
		{"clickhouse database", func(c *Config) { c.ClickHouseDatabase = "hook-line" }, "clickhouse_database: must be a plain identifier"},
		{"analytics retention not whole days", func(c *Config) { c.AnalyticsRetention = 36 * time.Hour }, "analytics_retention: must be a whole number of days"},
		{"analytics retention zero", func(c *Config) { c.AnalyticsRetention = 0 }, "analytics_retention: must be a whole number of days"},
		{"rollup retention negative", func(c *Config) { c.AnalyticsRollupRetention = -Day }, "analytics_rollup_retention: must be a whole number of days"},
		{"analytics retention 30 days", func(c *Config) { c.AnalyticsRetention = 30 * Day }, ""},
		{"http read timeout", func(c *Config) { c.HTTPReadTimeout = 0 }, "http_read_timeout: must be positive"},
		{"http idle timeout", func(c *Config) { c.HTTPIdleTimeout = -time.Second }, "http_idle_timeout: must be positive"},
		{"http header timeout", func(c *Config) { c.HTTPReadHeaderTimeout = 0 }, "http_read_header_timeout: must be positive"},
		{"http header longer than read", func(c *Config) { c.HTTPReadHeaderTimeout = time.Minute }, "http_read_header_timeout: must not be longer than http_read_timeout"},
		{"http write shorter than read", func(c *Config) { c.HTTPWriteTimeout = 10 * time.Second }, "http_write_timeout: must be at least http_read_timeout (30s)"},
		{"http max connections", func(c *Config) { c.HTTPMaxConnections = 0 }, "http_max_connections: must be at least 1"},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, "log_level: must be one of"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log_format: must be text or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	c := Default()
	c.Partitions = 0
	c.Jitter = 1
	err := c.Validate()
	for _, want := range []string{"partitions:", "jitter:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
partitions: 4
jitter: 0.1
tiers: [1s, 5s]
brokers: [file:9092]
`)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(*Config)
	}{
		{
			name: "defaults without file",
			want: func(*Config) {},
		},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: func(c *Config) {
				c.Partitions, c.Jitter, c.Brokers = 4, 0.1, []string{"file:9092"}
				c.Tiers = []time.Duration{time.Second, 5 * time.Second}
			},
		},
		{
			name: "file named by HOOKLINE_CONFIG",
			env:  map[string]string{"HOOKLINE_CONFIG": file},
			want: func(c *Config) {
				c.Partitions, c.Jitter, c.Brokers = 4, 0.1, []string{"file:9092"}
				c.Tiers = []time.Duration{time.Second, 5 * time.Second}
			},
		},
		{
			name: "--config over HOOKLINE_CONFIG",
			env:  map[string]string{"HOOKLINE_CONFIG": "/nonexistent/hookline.yaml"},
			args: []string{"--config", file},
			want: func(c *Config) {
				c.Partitions, c.Jitter, c.Brokers = 4, 0.1, []string{"file:9092"}
				c.Tiers = []time.Duration{time.Second, 5 * time.Second}
			},
		},
		{
			name: "env over file",
			env: map[string]string{
				"HOOKLINE_PARTITIONS": "6",
				"HOOKLINE_BROKERS":    "e1:9092, e2:9092",
				"HOOKLINE_TIERS":      "10s,1m30s",
			},
			args: []string{"--config", file},
			want: func(c *Config) {
				c.Partitions, c.Jitter, c.Brokers = 6, 0.1, []string{"e1:9092", "e2:9092"}
				c.Tiers = []time.Duration{10 * time.Second, 90 * time.Second}
			},
		},
		{
			name: "flags over env",
			env:  map[string]string{"HOOKLINE_PARTITIONS": "6", "HOOKLINE_JITTER": "0.3"},
			args: []string{"--config", file, "--partitions", "12", "--brokers=f:9092", "--endpoint-timeout=3s"},
			want: func(c *Config) {
				c.Partitions, c.Jitter, c.Brokers = 12, 0.3, []string{"f:9092"}
				c.Tiers = []time.Duration{time.Second, 5 * time.Second}
				c.EndpointTimeout = 3 * time.Second
			},
		},
		{
			name: "flag equal to the default still overrides env",
			env:  map[string]string{"HOOKLINE_PARTITIONS": "6"},
			args: []string{"--partitions=8"},
			want: func(*Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(newFlagSet(), tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			want.InstanceID = got.InstanceID
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	unknown := writeFile(t, "partitions: 8\npartitons: 9\n")
	badDuration := writeFile(t, "endpoint_timeout: 15\n")
	invalid := writeFile(t, "tiers: [30s, 0s]\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"env integer", map[string]string{"HOOKLINE_PARTITIONS": "abc"}, nil, []string{"HOOKLINE_PARTITIONS", `invalid integer "abc"`}},
		{"env duration list", map[string]string{"HOOKLINE_TIERS": "30s,soon"}, nil, []string{"HOOKLINE_TIERS", `item 1: invalid duration "soon"`}},
		{"env float", map[string]string{"HOOKLINE_TIER_SCALE": "fast"}, nil, []string{"HOOKLINE_TIER_SCALE"}},
		{"env duration", map[string]string{"HOOKLINE_SHUTDOWN_GRACE": "10"}, nil, []string{"HOOKLINE_SHUTDOWN_GRACE", "invalid duration"}},
		{"flag integer", nil, []string{"--partitions", "abc"}, []string{"-partitions", `invalid integer "abc"`}},
		{"unknown flag", nil, []string{"--partitons", "8"}, []string{"partitons"}},
		{"yaml unknown key", nil, []string{"--config", unknown}, []string{`unknown key "partitons"`, unknown}},
		{"yaml bare number duration", nil, []string{"--config", badDuration}, []string{"time.Duration"}},
		{"missing file", nil, []string{"--config", "/nonexistent/hookline.yaml"}, []string{"/nonexistent/hookline.yaml"}},
		{"validated after merge", nil, []string{"--config", invalid}, []string{"tiers[1]: delay must be positive"}},
		{"validated flag", nil, []string{"--max-attempts", "9"}, []string{"max_attempts:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(newFlagSet(), tt.args, env(tt.env))
			if err == nil {
				t.Fatalf("Load() = nil error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadSubcommandFlags(t *testing.T) {
	fs := newFlagSet()
	base := Default()
	base.TierScale = 0.01 // a subcommand's own defaults, e.g. demo
	base.RegisterFlags(fs)
	dryRun := fs.Bool("dry-run", false, "only print")
	rate := fs.Int("rate", 10, "records per second")

	cfg, err := Load(fs, []string{"--dry-run", "--partitions=2", "--rate", "50", "extra", "args"}, env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !*dryRun || *rate != 50 {
		t.Errorf("subcommand flags: dry-run=%v rate=%d, want true 50", *dryRun, *rate)
	}
	if cfg.Partitions != 2 || cfg.TierScale != 0.01 {
		t.Errorf("partitions=%d tier_scale=%v, want 2 and the registered default 0.01", cfg.Partitions, cfg.TierScale)
	}
	if got := fs.Args(); !reflect.DeepEqual(got, []string{"extra", "args"}) {
		t.Errorf("fs.Args() = %q", got)
	}
}

func TestFlagDefaultsInHelp(t *testing.T) {
	fs := newFlagSet()
	c := Default()
	c.RegisterFlags(fs)
	for name, want := range map[string]string{
		"tiers":              "30s,2m,10m,1h",
		"idempotency-window": "24h",
		"partitions":         "8",
		"tier-scale":         "1",
		"brokers":            "",
	} {
		if got := fs.Lookup(name).DefValue; got != want {
			t.Errorf("--%s default = %q, want %q", name, got, want)
		}
	}
	if u := fs.Lookup("max-attempts").Usage; !strings.Contains(u, "HOOKLINE_MAX_ATTEMPTS") {
		t.Errorf("usage %q does not name its environment variable", u)
	}
}

func TestExampleLoads(t *testing.T) {
	got, err := Load(newFlagSet(), []string{"--config", "example.yaml"}, env(nil))
	if err != nil {
		t.Fatalf("load example.yaml: %v", err)
	}
	want := Default()
	want.InstanceID = got.InstanceID
	if len(got.Brokers) == 0 {
		got.Brokers = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example.yaml must show the defaults:\n got %+v\nwant %+v", got, want)
	}
}

// Every key of Config has a field entry (flag and env), and example.yaml
// documents it, as a setting or a commented-out one.
func TestEveryKeyIsWiredAndDocumented(t *testing.T) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]bool{}
	for _, f := range fields {
		byName[f.name] = true
	}
	typ := reflect.TypeFor[Config]()
	if len(fields) != typ.NumField() {
		t.Errorf("%d fields entries for %d Config fields", len(fields), typ.NumField())
	}
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("yaml")
		if !byName[key] {
			t.Errorf("yaml key %q has no flag or environment variable", key)
		}
		if !regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(key) + `:`).Match(example) {
			t.Errorf("example.yaml does not document %q", key)
		}
	}
}
