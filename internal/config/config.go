// Package config owns hookline's settings: one Config struct that command-line
// flags, HOOKLINE_* environment variables and a YAML file all map to, the
// defaults, and the validation that rejects nonsense before anything starts.
//
// Precedence is flags > environment > file > defaults. Every setting has one
// name used everywhere: the YAML key (max_attempts), the flag with dashes
// (--max-attempts) and the environment variable in upper case with the
// HOOKLINE_ prefix (HOOKLINE_MAX_ATTEMPTS).
package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/outbox"
	"github.com/hookline/hookline/internal/pipeline"
	"github.com/hookline/hookline/internal/processors"
)

// Config is every setting of hookline.
type Config struct {
	// Brokers are the seed brokers of an external Kafka cluster. Empty means
	// start the embedded single-node development broker.
	Brokers []string `yaml:"brokers"`
	// KafkaListen is the embedded broker's listen address.
	KafkaListen string `yaml:"kafka_listen"`
	// DataDir holds the embedded broker's log and any other local state.
	DataDir string `yaml:"data_dir"`

	// KafkaTLS connects to Brokers over TLS, verifying their certificates
	// against the system roots or KafkaTLSCAFile.
	KafkaTLS bool `yaml:"kafka_tls"`
	// KafkaTLSCAFile is a PEM file of the CA certificates that sign the
	// brokers' certificates; empty means the system roots.
	KafkaTLSCAFile string `yaml:"kafka_tls_ca_file"`
	// KafkaTLSCertFile and KafkaTLSKeyFile are the PEM client certificate
	// and key presented to brokers that require one (mTLS).
	KafkaTLSCertFile string `yaml:"kafka_tls_cert_file"`
	KafkaTLSKeyFile  string `yaml:"kafka_tls_key_file"`
	// KafkaTLSServerName is the name the brokers' certificates must carry;
	// empty means each broker's host as dialed.
	KafkaTLSServerName string `yaml:"kafka_tls_server_name"`
	// KafkaTLSInsecureSkipVerify accepts any broker certificate. Anyone on
	// the network path can then impersonate the cluster; testing only.
	KafkaTLSInsecureSkipVerify bool `yaml:"kafka_tls_insecure_skip_verify"`
	// KafkaSASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty
	// means no SASL authentication.
	KafkaSASLMechanism string `yaml:"kafka_sasl_mechanism"`
	// KafkaSASLUsername and KafkaSASLPassword are the SASL credentials.
	// Prefer the environment (HOOKLINE_KAFKA_SASL_PASSWORD) for the
	// password; it is never logged.
	KafkaSASLUsername string `yaml:"kafka_sasl_username"`
	KafkaSASLPassword string `yaml:"kafka_sasl_password"`

	// TopicPrefix is prepended to every topic name.
	TopicPrefix string `yaml:"topic_prefix"`
	// Partitions is the partition count of events, the retry tiers, the DLQ
	// and attempts: they must match so a record keeps its partition number.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of created topics; -1 is the broker's default.
	ReplicationFactor int `yaml:"replication_factor"`

	// Tiers are the retry tier delays, in order. They also name the tier
	// topics, so changing them creates new topics.
	Tiers []time.Duration `yaml:"tiers"`
	// TierScale multiplies every tier delay without renaming the topics
	// (0.01 makes a demo's retries a hundred times faster).
	TierScale float64 `yaml:"tier_scale"`
	// MaxAttempts is the number of delivery attempts before the DLQ; 0 means
	// one per tier plus the first.
	MaxAttempts int `yaml:"max_attempts"`
	// Jitter is the fraction of a tier delay added at random (0..0.5).
	Jitter float64 `yaml:"jitter"`

	// Listen is the ingest and admin HTTP API address.
	Listen string `yaml:"listen"`
	// MetricsListen is the Prometheus metrics address.
	MetricsListen string `yaml:"metrics_listen"`
	// HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout and
	// HTTPIdleTimeout bound every HTTP listener (the API and metrics): the
	// time to send a request's headers, the whole request, the request
	// from its headers to the end of the answer, and an idle keep-alive.
	HTTPReadHeaderTimeout time.Duration `yaml:"http_read_header_timeout"`
	HTTPReadTimeout       time.Duration `yaml:"http_read_timeout"`
	HTTPWriteTimeout      time.Duration `yaml:"http_write_timeout"`
	HTTPIdleTimeout       time.Duration `yaml:"http_idle_timeout"`
	// HTTPMaxConnections is how many connections each HTTP listener serves
	// at once.
	HTTPMaxConnections int `yaml:"http_max_connections"`
	// MaxPayloadBytes bounds an event payload accepted by ingest.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// IdempotencyWindow is how long an ingest idempotency key is remembered.
	IdempotencyWindow time.Duration `yaml:"idempotency_window"`

	// EndpointTimeout is the per-request timeout for endpoints that set none.
	EndpointTimeout time.Duration `yaml:"endpoint_timeout"`
	// Concurrency is the number of concurrent deliveries per partition
	// (records of different keys).
	Concurrency int `yaml:"concurrency"`
	// MaxIdleConnsPerHost is the kept-alive connections per endpoint host
	// that deliveries keep for reuse; 0 sizes the pool to partitions x
	// concurrency, the most requests one stage may have in flight to one
	// host (IdleConnsPerHost).
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// MaxInFlight is the number of records held per partition (its
	// read-ahead window: delivering, waiting until due, or waiting for their
	// commit) before fetching pauses.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightBytes bounds the bytes held per partition the same way.
	MaxInFlightBytes int `yaml:"max_in_flight_bytes"`
	// BreakerThreshold is the consecutive failures that open an endpoint's
	// circuit breaker.
	BreakerThreshold int `yaml:"breaker_threshold"`
	// BreakerCooldown is how long an open breaker waits before a trial.
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
	// EndpointDisableAfter is how long an endpoint that sets no
	// disable_after may fail without a success before it is disabled; 0
	// never.
	EndpointDisableAfter time.Duration `yaml:"endpoint_disable_after"`
	// FailingAfter is how many failed requests in a row to an endpoint
	// emit endpoint.failing, unless its breaker opened first; 0: only the
	// breaker.
	FailingAfter int `yaml:"failing_after"`
	// OperatorWebhook is the URL operational events are POSTed to, signed
	// with OperatorWebhookSecret; empty: they stay in the operational
	// topic.
	OperatorWebhook       string `yaml:"operator_webhook"`
	OperatorWebhookSecret string `yaml:"operator_webhook_secret"`
	// ShutdownGrace bounds a graceful shutdown.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MetricsEndpointLabels bounds the endpoint label of the per-endpoint
	// metrics: the first N endpoints a process delivers to get their own
	// series, every later one counts under endpoint="_other". 0 turns the
	// label off: every endpoint counts under "_other" (docs/metrics.md).
	MetricsEndpointLabels int `yaml:"metrics_endpoint_labels"`
	// InstanceID identifies this process, in transactional ids among others.
	InstanceID string `yaml:"instance_id"`

	// ClickHouse is the native-protocol address of ClickHouse; empty
	// disables the attempt sink.
	ClickHouse string `yaml:"clickhouse"`
	// ClickHouseDatabase is the database holding the attempts tables.
	ClickHouseDatabase string `yaml:"clickhouse_database"`
	// ClickHouseUsername and ClickHousePassword authenticate to ClickHouse.
	// Prefer the environment (HOOKLINE_CLICKHOUSE_PASSWORD) for the
	// password; it is never logged.
	ClickHouseUsername string `yaml:"clickhouse_username"`
	ClickHousePassword string `yaml:"clickhouse_password"`
	// ClickHouseTLS connects to ClickHouse over TLS (its secure native
	// port, usually 9440), verifying its certificate against the system
	// roots or ClickHouseTLSCAFile.
	ClickHouseTLS bool `yaml:"clickhouse_tls"`
	// ClickHouseTLSCAFile is a PEM file of the CA certificates that sign
	// ClickHouse's certificate; empty means the system roots.
	ClickHouseTLSCAFile string `yaml:"clickhouse_tls_ca_file"`
	// ClickHouseTLSInsecureSkipVerify accepts any ClickHouse certificate;
	// testing only.
	ClickHouseTLSInsecureSkipVerify bool `yaml:"clickhouse_tls_insecure_skip_verify"`
	// AnalyticsRetention is how long attempt rows (and rejected records)
	// are kept, in whole days: a TTL on current ClickHouse servers, monthly
	// partitions dropped by `hookline migrate --prune` and serve on 18.x.
	AnalyticsRetention time.Duration `yaml:"analytics_retention"`
	// AnalyticsRollupRetention is the same for the per-minute rollup.
	AnalyticsRollupRetention time.Duration `yaml:"analytics_rollup_retention"`

	// OutboxPostgres is the PostgreSQL DSN of a producer's database whose
	// outbox table serve relays to the events topic; empty runs no relay
	// (docs/outbox.md). It may hold a password: prefer the environment.
	OutboxPostgres string `yaml:"outbox_postgres"`
	// OutboxTable is the outbox table's name.
	OutboxTable string `yaml:"outbox_table"`
	// OutboxBatch is the most rows the relay publishes in one transaction.
	OutboxBatch int `yaml:"outbox_batch"`
	// OutboxPoll is how long the relay waits after a poll that found fewer
	// than OutboxBatch rows.
	OutboxPoll time.Duration `yaml:"outbox_poll"`

	// AllowPrivateDestinations lets deliveries reach loopback, private,
	// link-local and other special addresses. For local development only:
	// with it, anyone who can register an endpoint can make hookline POST
	// into its own network (cloud metadata at 169.254.169.254 included).
	AllowPrivateDestinations bool `yaml:"allow_private_destinations"`
	// AllowDestinations are CIDRs that deliveries may reach although the
	// SSRF guard refuses them otherwise (an internal receiver's subnet).
	AllowDestinations []string `yaml:"allow_destinations"`

	// SecretKey encrypts endpoint signing secrets in the endpoints topic:
	// the standard base64 of 32 random bytes. Several comma-separated keys
	// rotate it: the first encrypts, every one decrypts. Prefer the
	// environment (HOOKLINE_SECRET_KEY) or SecretKeyFile to a flag.
	SecretKey string `yaml:"secret_key"`
	// SecretKeyFile holds the key(s) of SecretKey instead, one per line.
	SecretKeyFile string `yaml:"secret_key_file"`

	// Tokens are the bearer tokens of the ingest and admin API, stored as
	// SHA-256 hashes. None configured: the API is open (a startup warning
	// says so).
	Tokens []Token `yaml:"tokens"`
	// TokenRateLimit is the requests per second each token may make; 0 is
	// unlimited.
	TokenRateLimit float64 `yaml:"token_rate_limit"`
	// TokenBurst is how many requests a token may make at once above its
	// rate.
	TokenBurst int `yaml:"token_burst"`
	// InsecureNoAuth lets the API listen on a non-loopback address with no
	// tokens configured, open to whoever can reach it. Without it, that
	// configuration is refused.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
}

// Day is the unit of the retention settings.
const Day = 24 * time.Hour

// Default returns the defaults of every setting. Each package owns the
// defaults of what it does, as exported values, and Default refers to them;
// the settings that belong to no other package (listen addresses, topic
// layout, logging) are set here. MetricsEndpointLabels is the app's default,
// and ClickHouseDatabase, ClickHouseUsername and the retentions analytics':
// both packages import config, so Default cannot refer to them, and their
// tests hold them equal.
func Default() Config {
	return Config{
		KafkaListen:       "127.0.0.1:9092",
		DataDir:           "./hookline-data",
		TopicPrefix:       "hookline.",
		Partitions:        8,
		ReplicationFactor: -1,
		Tiers:             []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour},
		TierScale:         1,
		Jitter:            processors.DefaultJitter,
		Listen:            "127.0.0.1:8080",
		MetricsListen:     "127.0.0.1:9464",
		MaxPayloadBytes:   ingest.DefaultMaxPayloadBytes,
		IdempotencyWindow: ingest.DefaultIdempotencyWindow,
		EndpointTimeout:   endpoints.DefaultTimeout,
		Concurrency:       pipeline.DefaultConcurrency,
		MaxInFlight:       pipeline.DefaultMaxInFlight,
		MaxInFlightBytes:  pipeline.DefaultMaxInFlightBytes,
		BreakerThreshold:  processors.DefaultBreakerThreshold,
		BreakerCooldown:   processors.DefaultBreakerCooldown,

		EndpointDisableAfter: processors.DefaultDisableAfter,
		FailingAfter:         processors.DefaultFailingAfter,
		ShutdownGrace:        pipeline.DefaultGrace,
		// app.DefaultEndpointLabels (app imports config); a test there
		// holds them equal.
		MetricsEndpointLabels: 100,
		InstanceID:            defaultInstanceID(),
		// analytics.DefaultDatabase and DefaultUsername; a test there holds
		// them equal.
		ClickHouseDatabase: "hookline",
		ClickHouseUsername: "default",
		// analytics.DefaultRetention; a test there holds the two equal.
		AnalyticsRetention:       90 * Day,
		AnalyticsRollupRetention: 400 * Day,
		OutboxTable:              outbox.DefaultTable,
		OutboxBatch:              outbox.DefaultBatch,
		OutboxPoll:               outbox.DefaultPoll,
		TokenRateLimit:           100,
		TokenBurst:               200,
		LogLevel:                 "info",
		LogFormat:                "text",

		HTTPReadHeaderTimeout: ingest.DefaultReadHeaderTimeout,
		HTTPReadTimeout:       ingest.DefaultReadTimeout,
		HTTPWriteTimeout:      ingest.DefaultWriteTimeout,
		HTTPIdleTimeout:       ingest.DefaultIdleTimeout,
		HTTPMaxConnections:    ingest.DefaultMaxConnections,
	}
}

// defaultInstanceID is hostname-pid-random: unique per process even when two
// processes on one host share a pid namespace boundary (containers).
func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hookline"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Embedded reports whether hookline runs its own development broker.
func (c Config) Embedded() bool { return len(c.Brokers) == 0 }

// TierDelays returns the tier delays multiplied by TierScale.
func (c Config) TierDelays() []time.Duration {
	out := make([]time.Duration, len(c.Tiers))
	for i, d := range c.Tiers {
		out[i] = scale(d, c.TierScale)
	}
	return out
}

func scale(d time.Duration, f float64) time.Duration {
	return time.Duration(math.Round(float64(d) * f))
}

// Attempts returns the effective maximum number of delivery attempts.
func (c Config) Attempts() int {
	if c.MaxAttempts == 0 {
		return len(c.Tiers) + 1
	}
	return c.MaxAttempts
}

// IdleConnsPerHost is the idle connection pool per endpoint host of the
// delivery sender: max_idle_conns_per_host, or when 0 partitions x
// concurrency, so that a stage with every worker of every partition busy
// on one endpoint finds a kept-alive connection for each.
func (c Config) IdleConnsPerHost() int {
	if c.MaxIdleConnsPerHost > 0 {
		return c.MaxIdleConnsPerHost
	}
	return c.Partitions * c.Concurrency
}
