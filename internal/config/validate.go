package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hookline/hookline/internal/outbox"
	"github.com/hookline/hookline/signature"
)

// Limits that Validate enforces.
const (
	MaxPartitions = 10000
	// MaxPayloadLimit is Kafka's default max.message.bytes rounded down: a
	// larger payload would not fit in a record on a default broker.
	MaxPayloadLimit = 1 << 20
	// maxPrefixLen leaves room under Kafka's 249 character topic name limit
	// for the longest suffix we append (retry.<duration>).
	maxPrefixLen = 200
)

// Validate reports every invalid setting, each prefixed with its YAML name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	for i, b := range c.Brokers {
		if err := checkHostPort(b, false); err != nil {
			bad(fmt.Sprintf("brokers[%d]", i), "%v", err)
		}
	}
	errs = append(errs, c.validateKafkaSecurity()...)
	if c.Embedded() {
		if err := checkHostPort(c.KafkaListen, true); err != nil {
			bad("kafka_listen", "%v", err)
		}
		if strings.TrimSpace(c.DataDir) == "" {
			bad("data_dir", "must not be empty when the embedded broker runs (no brokers)")
		}
	}

	if err := checkTopicPrefix(c.TopicPrefix); err != nil {
		bad("topic_prefix", "%v", err)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		bad("partitions", "must be between 1 and %d, got %d", MaxPartitions, c.Partitions)
	}
	if c.ReplicationFactor != -1 && (c.ReplicationFactor < 1 || c.ReplicationFactor > math.MaxInt16) {
		bad("replication_factor", "must be -1 (broker default) or between 1 and %d, got %d", math.MaxInt16, c.ReplicationFactor)
	}

	scaleOK := c.TierScale > 0 && !math.IsInf(c.TierScale, 0) && !math.IsNaN(c.TierScale)
	if !scaleOK {
		bad("tier_scale", "must be a positive number, got %v", c.TierScale)
	}
	for i, d := range c.Tiers {
		field := fmt.Sprintf("tiers[%d]", i)
		switch {
		case d <= 0:
			bad(field, "delay must be positive, got %v", d)
		case i > 0 && d <= c.Tiers[i-1]:
			// Equal delays would name the same topic; shorter ones make
			// no sense for a backoff.
			bad(field, "delay %v must be longer than tiers[%d] (%v)", d, i-1, c.Tiers[i-1])
		case scaleOK && scale(d, c.TierScale) <= 0:
			bad(field, "delay %v scaled by tier_scale %v is zero", d, c.TierScale)
		}
	}
	if maxA := len(c.Tiers) + 1; c.MaxAttempts != 0 && (c.MaxAttempts < 1 || c.MaxAttempts > maxA) {
		bad("max_attempts", "must be 0 (one per tier plus the first) or between 1 and %d (len(tiers)+1), got %d", maxA, c.MaxAttempts)
	}
	if !(c.Jitter >= 0 && c.Jitter <= 0.5) {
		bad("jitter", "must be between 0 and 0.5, got %v", c.Jitter)
	}

	if err := checkHostPort(c.Listen, true); err != nil {
		bad("listen", "%v", err)
	}
	if err := checkHostPort(c.MetricsListen, true); err != nil {
		bad("metrics_listen", "%v", err)
	}
	if sameFixedAddr(c.Listen, c.MetricsListen) {
		bad("metrics_listen", "must differ from listen (%s)", c.Listen)
	}
	if c.Embedded() && sameFixedAddr(c.KafkaListen, c.Listen) {
		bad("kafka_listen", "must differ from listen (%s)", c.Listen)
	}
	if c.Embedded() && sameFixedAddr(c.KafkaListen, c.MetricsListen) {
		bad("kafka_listen", "must differ from metrics_listen (%s)", c.MetricsListen)
	}
	errs = append(errs, c.validateHTTP()...)
	if c.MaxPayloadBytes < 1 || c.MaxPayloadBytes > MaxPayloadLimit {
		bad("max_payload_bytes", "must be between 1 and %d, got %d", MaxPayloadLimit, c.MaxPayloadBytes)
	}
	if c.IdempotencyWindow <= 0 {
		bad("idempotency_window", "must be positive, got %v", c.IdempotencyWindow)
	}

	if c.EndpointTimeout <= 0 {
		bad("endpoint_timeout", "must be positive, got %v", c.EndpointTimeout)
	}
	if c.Concurrency < 1 {
		bad("concurrency", "must be at least 1, got %d", c.Concurrency)
	}
	if c.MaxIdleConnsPerHost < 0 {
		bad("max_idle_conns_per_host", "must not be negative (0 is partitions x concurrency), got %d", c.MaxIdleConnsPerHost)
	}
	if c.MaxInFlight < 1 {
		bad("max_in_flight", "must be at least 1, got %d", c.MaxInFlight)
	} else if c.Concurrency >= 1 && c.MaxInFlight < c.Concurrency {
		bad("max_in_flight", "must be at least concurrency (%d), got %d", c.Concurrency, c.MaxInFlight)
	}
	if c.MaxInFlightBytes < 1 {
		bad("max_in_flight_bytes", "must be at least 1, got %d", c.MaxInFlightBytes)
	}
	if c.MetricsEndpointLabels < 0 || c.MetricsEndpointLabels > 10000 {
		bad("metrics_endpoint_labels", "must be between 0 (label off) and 10000, got %d", c.MetricsEndpointLabels)
	}
	if c.BreakerThreshold < 1 {
		bad("breaker_threshold", "must be at least 1, got %d", c.BreakerThreshold)
	}
	if c.BreakerCooldown <= 0 {
		bad("breaker_cooldown", "must be positive, got %v", c.BreakerCooldown)
	}
	if c.EndpointDisableAfter < 0 {
		bad("endpoint_disable_after", "must not be negative (0 turns auto-disable off), got %v", c.EndpointDisableAfter)
	}
	if c.FailingAfter < 0 {
		bad("failing_after", "must not be negative (0: only an opened breaker), got %d", c.FailingAfter)
	}
	switch {
	case c.OperatorWebhook == "" && c.OperatorWebhookSecret != "":
		bad("operator_webhook", "is required when operator_webhook_secret is set")
	case c.OperatorWebhook != "":
		if u, err := url.Parse(c.OperatorWebhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("operator_webhook", "must be an absolute http or https URL")
		}
		if c.OperatorWebhookSecret == "" {
			bad("operator_webhook_secret", "is required with operator_webhook: operational events are always signed")
		} else if err := signature.ValidateSecret(c.OperatorWebhookSecret); err != nil {
			bad("operator_webhook_secret", "%v", err)
		}
	}
	if c.ShutdownGrace <= 0 {
		bad("shutdown_grace", "must be positive, got %v", c.ShutdownGrace)
	}
	if c.InstanceID == "" {
		bad("instance_id", "must not be empty")
	} else if strings.ContainsFunc(c.InstanceID, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) {
		bad("instance_id", "must not contain spaces or control characters, got %q", c.InstanceID)
	}

	if c.ClickHouse != "" {
		if err := checkHostPort(c.ClickHouse, false); err != nil {
			bad("clickhouse", "%v", err)
		}
	}
	if !isIdentifier(c.ClickHouseDatabase) {
		bad("clickhouse_database", "must be a plain identifier (letters, digits, _; not starting with a digit), got %q", c.ClickHouseDatabase)
	}
	errs = append(errs, c.validateClickHouseSecurity()...)
	for _, r := range []struct {
		field string
		d     time.Duration
	}{{"analytics_retention", c.AnalyticsRetention}, {"analytics_rollup_retention", c.AnalyticsRollupRetention}} {
		if r.d < Day || r.d%Day != 0 {
			bad(r.field, "must be a whole number of days (a multiple of 24h, at least 24h), got %v", r.d)
		}
	}

	if err := outbox.ValidateTable(c.OutboxTable); err != nil {
		bad("outbox_table", "%v", err)
	}
	if c.OutboxBatch < 1 || c.OutboxBatch > outbox.MaxBatch {
		bad("outbox_batch", "must be between 1 and %d, got %d", outbox.MaxBatch, c.OutboxBatch)
	}
	if c.OutboxPoll <= 0 {
		bad("outbox_poll", "must be positive, got %v", c.OutboxPoll)
	}

	for i, cidr := range c.AllowDestinations {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad(fmt.Sprintf("allow_destinations[%d]", i), "want a CIDR such as 10.1.2.0/24 or fd00::/64, got %q", cidr)
		}
	}
	if c.SecretKey != "" && c.SecretKeyFile != "" {
		bad("secret_key", "set secret_key or secret_key_file, not both")
	}
	if c.SecretKey != "" {
		if _, err := ParseSecretKeys(c.SecretKey); err != nil {
			bad("secret_key", "%v", err)
		}
	}
	for i, t := range c.Tokens {
		if err := t.check(); err != nil {
			bad(fmt.Sprintf("tokens[%d]", i), "%v", err)
		}
	}
	if !(c.TokenRateLimit >= 0) || math.IsInf(c.TokenRateLimit, 0) {
		bad("token_rate_limit", "must be 0 (unlimited) or a positive number, got %v", c.TokenRateLimit)
	}
	if c.TokenRateLimit > 0 && c.TokenBurst < 1 {
		bad("token_burst", "must be at least 1 when token_rate_limit is set, got %d", c.TokenBurst)
	}

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be one of debug, info, warn, error; got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", "must be text or json, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// checkHostPort accepts host:port with a numeric port. A listen address may
// leave the host empty (all interfaces) and use port 0 (any free port); a
// dial address needs both.
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (!listen && p == 0) {
		return fmt.Errorf("invalid port in %q", addr)
	}
	if !listen && host == "" {
		return fmt.Errorf("missing host in %q", addr)
	}
	return nil
}

// sameFixedAddr reports whether two listen addresses would collide: the same
// fixed port on the same (or an overlapping wildcard) host.
func sameFixedAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp || ap == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || wild(ah) || wild(bh)
}

func checkTopicPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("must be at most %d characters, got %d", maxPrefixLen, len(p))
	}
	for _, r := range p {
		if !topicChar(r) {
			return fmt.Errorf("may only contain letters, digits, '.', '_' and '-' (Kafka topic characters), got %q", p)
		}
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// topicChar reports whether r may appear in a Kafka topic name.
func topicChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}
