package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hookline/hookline/internal/config"
)

// KafkaOpts returns the client options every Kafka client of hookline needs
// to reach cfg's cluster beyond its seed brokers: TLS (kgo.DialTLSConfig)
// and SASL (kgo.SASL). It returns none for the embedded broker (no brokers
// configured), which listens in plaintext without authentication. It reads
// the TLS files; errors name the setting.
func KafkaOpts(cfg config.Config) ([]kgo.Opt, error) {
	if cfg.Embedded() {
		return nil, nil
	}
	var opts []kgo.Opt
	tc, err := cfg.KafkaTLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech := cfg.SASLMechanism(); mech != "" {
		m, err := saslMechanism(mech, cfg.KafkaSASLUsername, cfg.KafkaSASLPassword)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func saslMechanism(mech, user, pass string) (sasl.Mechanism, error) {
	switch mech {
	case config.SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case config.SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case config.SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka_sasl_mechanism: must be one of %s, %s, %s; got %q", config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512, mech)
}

// ErrKafkaAuth is wrapped by errors of a cluster that refused hookline's
// credentials or whose certificate hookline refused. Retrying does not
// help; the configuration has to change.
var ErrKafkaAuth = errors.New("kafka authentication failed")

// KafkaAuthError wraps err in ErrKafkaAuth, with what to check, if it is an
// authentication or certificate error; otherwise it returns err.
func KafkaAuthError(err error) error {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		rerr  tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrKafkaAuth):
		return err
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%w: the brokers rejected the SASL credentials (check kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password): %w", ErrKafkaAuth, err)
	case errors.As(err, &verr), errors.As(err, &uaerr), errors.As(err, &herr):
		return fmt.Errorf("%w: the brokers' certificate is not trusted (check kafka_tls_ca_file and kafka_tls_server_name): %w", ErrKafkaAuth, err)
	case errors.As(err, &rerr):
		return fmt.Errorf("%w: the brokers do not speak TLS on this port (check brokers and kafka_tls): %w", ErrKafkaAuth, err)
	}
	return err
}

// authProbeTimeout bounds checkKafkaAuth.
const authProbeTimeout = 20 * time.Second

// checkKafkaAuth asks the cluster for its metadata once, with the security
// options, and returns an error wrapping ErrKafkaAuth if the cluster
// refused the credentials or hookline refused its certificate; any other
// outcome (a broker still starting, say) is left to the caller's retries.
// A broker refuses SASL credentials either with SASL_AUTHENTICATION_FAILED
// or, like some proxies and kfake, by closing the connection in the middle
// of the SASL exchange; both are caught.
func checkKafkaAuth(ctx context.Context, brokers []string, secure []kgo.Opt) error {
	if len(secure) == 0 {
		return nil
	}
	watch := new(saslWatch)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.WithHooks(watch), kgo.RequestRetries(1)}, secure...)...)
	if err != nil {
		return fmt.Errorf("create kafka client for %v: %w", brokers, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, authProbeTimeout)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	switch {
	case err == nil:
		return nil
	case errors.Is(KafkaAuthError(err), ErrKafkaAuth):
		return fmt.Errorf("connect to kafka %v: %w", brokers, KafkaAuthError(err))
	case watch.failed.Load():
		return fmt.Errorf("connect to kafka %v: %w: the brokers closed the connection during SASL authentication, which is how some refuse credentials (check kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password): %w", brokers, ErrKafkaAuth, err)
	}
	return nil
}

// saslWatch notes a SASL exchange that broke off.
type saslWatch struct{ failed atomic.Bool }

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *saslWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && (key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()) {
		w.failed.Store(true)
	}
}

// warnKafkaSecurity says loudly which Kafka security settings weaken or do
// nothing. It never logs a credential.
func (s *Service) warnKafkaSecurity() {
	cfg := s.cfg
	switch {
	case cfg.Embedded() && cfg.KafkaSecured():
		s.log.Warn("kafka_tls and kafka_sasl_* settings are ignored: no brokers are configured, and the embedded development broker listens in plaintext without authentication")
		return
	case cfg.Embedded():
		return
	}
	if cfg.KafkaTLS && cfg.KafkaTLSInsecureSkipVerify {
		s.log.Warn("INSECURE: kafka_tls_insecure_skip_verify is on: the brokers' certificates are not verified, so anyone on the network path can impersonate the cluster, read and change every record and take the SASL password; for testing only", "brokers", cfg.Brokers)
	}
	if cfg.SASLMechanism() == config.SASLPlain && !cfg.KafkaTLS {
		s.log.Warn("kafka_sasl_mechanism PLAIN without kafka_tls sends the SASL password in clear text", "brokers", cfg.Brokers)
	}
	if !cfg.KafkaTLS && cfg.SASLMechanism() == "" {
		s.log.Info("kafka connections are neither encrypted nor authenticated (kafka_tls, kafka_sasl_mechanism)", "brokers", cfg.Brokers)
	}
}
