package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Kafka SASL mechanisms hookline speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

var saslMechanisms = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// SASLMechanism returns kafka_sasl_mechanism in its canonical upper case
// spelling; "" when SASL is off.
func (c Config) SASLMechanism() string {
	return strings.ToUpper(strings.TrimSpace(c.KafkaSASLMechanism))
}

// KafkaSecured reports whether any Kafka TLS or SASL setting is set. The
// embedded broker listens in plaintext and ignores them.
func (c Config) KafkaSecured() bool {
	return c.KafkaTLS || c.KafkaTLSCAFile != "" || c.KafkaTLSCertFile != "" || c.KafkaTLSKeyFile != "" ||
		c.KafkaTLSServerName != "" || c.KafkaTLSInsecureSkipVerify ||
		c.KafkaSASLMechanism != "" || c.KafkaSASLUsername != "" || c.KafkaSASLPassword != ""
}

// KafkaClientTLS returns the files and options of the Kafka TLS settings.
func (c Config) KafkaClientTLS() ClientTLS {
	return ClientTLS{
		CAFile:             c.KafkaTLSCAFile,
		CertFile:           c.KafkaTLSCertFile,
		KeyFile:            c.KafkaTLSKeyFile,
		ServerName:         c.KafkaTLSServerName,
		InsecureSkipVerify: c.KafkaTLSInsecureSkipVerify,
	}
}

// KafkaTLSConfig returns the TLS configuration to dial the brokers with, or
// nil when kafka_tls is off. It reads the CA, certificate and key files;
// errors name the setting.
func (c Config) KafkaTLSConfig() (*tls.Config, error) {
	if !c.KafkaTLS {
		return nil, nil
	}
	return c.KafkaClientTLS().Build("kafka_tls")
}

// ClientTLS is a TLS client configuration as files: what the kafka_tls_* and
// clickhouse_tls_* settings hold.
type ClientTLS struct {
	// CAFile holds the PEM certificates of the CAs trusted to sign the
	// server's certificate; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key; both
	// or neither.
	CertFile, KeyFile string
	// ServerName is checked against the server's certificate; empty means
	// the host dialed.
	ServerName string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
}

// Build reads the files and returns the TLS configuration. prefix is the
// settings' common name ("kafka_tls"): an error names the setting at fault,
// as in "kafka_tls_ca_file: ...".
func (t ClientTLS) Build(prefix string) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, // opt-in; serve warns at startup
	}
	if t.CAFile != "" {
		pool, err := LoadCertPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s_ca_file: %w", prefix, err)
		}
		tc.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, fmt.Errorf("%s_key_file: required with %s_cert_file", prefix, prefix)
	case t.CertFile == "" && t.KeyFile != "":
		return nil, fmt.Errorf("%s_cert_file: required with %s_key_file", prefix, prefix)
	case t.CertFile != "":
		certPEM, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("%s_cert_file: %w", prefix, err)
		}
		keyPEM, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s_key_file: %w", prefix, err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			if cerr := CheckCertificatePEM(certPEM); cerr != nil {
				return nil, fmt.Errorf("%s_cert_file: %s: %w", prefix, t.CertFile, cerr)
			}
			// tls errors describe the key without quoting it.
			return nil, fmt.Errorf("%s_key_file: %s: %w", prefix, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// CheckCertificatePEM reports whether b starts with a PEM certificate that
// parses.
func CheckCertificatePEM(b []byte) error {
	block, _ := pem.Decode(b)
	if block == nil {
		return errors.New("no PEM data found")
	}
	if block.Type != "CERTIFICATE" {
		return fmt.Errorf("first PEM block is %q, want CERTIFICATE", block.Type)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return err
	}
	return nil
}

// validateKafkaSecurity checks the kafka_tls_* and kafka_sasl_* settings,
// reading the files they name.
func (c Config) validateKafkaSecurity() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.KafkaTLS {
		if _, err := c.KafkaTLSConfig(); err != nil {
			errs = append(errs, err)
		}
	} else {
		for _, s := range []struct {
			field string
			set   bool
		}{
			{"kafka_tls_ca_file", c.KafkaTLSCAFile != ""},
			{"kafka_tls_cert_file", c.KafkaTLSCertFile != ""},
			{"kafka_tls_key_file", c.KafkaTLSKeyFile != ""},
			{"kafka_tls_server_name", c.KafkaTLSServerName != ""},
			{"kafka_tls_insecure_skip_verify", c.KafkaTLSInsecureSkipVerify},
		} {
			if s.set {
				bad(s.field, "has no effect unless kafka_tls is true")
			}
		}
	}

	mech := c.SASLMechanism()
	switch {
	case mech == "":
		if c.KafkaSASLUsername != "" || c.KafkaSASLPassword != "" {
			bad("kafka_sasl_mechanism", "required when kafka_sasl_username or kafka_sasl_password is set (one of %s)", strings.Join(saslMechanisms, ", "))
		}
	case !slices.Contains(saslMechanisms, mech):
		bad("kafka_sasl_mechanism", "must be one of %s, got %q", strings.Join(saslMechanisms, ", "), c.KafkaSASLMechanism)
	default:
		if c.KafkaSASLUsername == "" {
			bad("kafka_sasl_username", "required when kafka_sasl_mechanism is set")
		}
		if c.KafkaSASLPassword == "" {
			bad("kafka_sasl_password", "required when kafka_sasl_mechanism is set (prefer %sKAFKA_SASL_PASSWORD)", EnvPrefix)
		}
	}
	return errs
}

// validateClickHouseSecurity checks the clickhouse_tls_* settings, reading
// the CA file.
func (c Config) validateClickHouseSecurity() []error {
	if c.ClickHouseTLS {
		t := ClientTLS{CAFile: c.ClickHouseTLSCAFile, InsecureSkipVerify: c.ClickHouseTLSInsecureSkipVerify}
		if _, err := t.Build("clickhouse_tls"); err != nil {
			return []error{err}
		}
		return nil
	}
	var errs []error
	if c.ClickHouseTLSCAFile != "" {
		errs = append(errs, errors.New("clickhouse_tls_ca_file: has no effect unless clickhouse_tls is true"))
	}
	if c.ClickHouseTLSInsecureSkipVerify {
		errs = append(errs, errors.New("clickhouse_tls_insecure_skip_verify: has no effect unless clickhouse_tls is true"))
	}
	return errs
}
