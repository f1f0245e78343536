package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/hookline/hookline/internal/config"
)

// testCA is a self-signed CA and a server certificate it signed for
// 127.0.0.1 and localhost.
type testCA struct {
	caFile string // PEM of the CA certificate
	server *tls.Config
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := newKey(), newKey()
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hookline test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kafka"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{caFile: caFile, server: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
		MinVersion:   tls.VersionTLS12,
	}}
}

func TestKafkaOpts(t *testing.T) {
	ca := newTestCA(t)
	cfg := config.Default()
	if opts, err := KafkaOpts(cfg); opts != nil || err != nil {
		t.Fatalf("embedded broker: KafkaOpts = %d opts, %v; want none", len(opts), err)
	}
	cfg.KafkaTLS, cfg.KafkaTLSCAFile = true, ca.caFile
	cfg.KafkaSASLMechanism, cfg.KafkaSASLUsername, cfg.KafkaSASLPassword = "SCRAM-SHA-256", "u", "p"
	if opts, err := KafkaOpts(cfg); opts != nil || err != nil {
		t.Fatalf("embedded broker with TLS and SASL set: KafkaOpts = %d opts, %v; want none (it listens in plaintext)", len(opts), err)
	}

	for _, tc := range []struct {
		mech, want string
	}{
		{"PLAIN", "PLAIN"},
		{"scram-sha-256", "SCRAM-SHA-256"},
		{"SCRAM-SHA-512", "SCRAM-SHA-512"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			cfg := cfg
			cfg.Brokers = []string{"kafka-1:9093"}
			cfg.KafkaSASLMechanism = tc.mech
			opts, err := KafkaOpts(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			tlsCfg, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
			if tlsCfg == nil || tlsCfg.RootCAs == nil || tlsCfg.InsecureSkipVerify {
				t.Errorf("TLS config %+v, want one with the CA as roots", tlsCfg)
			}
			mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
			if len(mechs) != 1 || mechs[0].Name() != tc.want {
				t.Errorf("SASL mechanisms %v, want %s", mechs, tc.want)
			}
		})
	}

	cfg.Brokers = []string{"kafka-1:9093"}
	cfg.KafkaTLSCAFile = filepath.Join(t.TempDir(), "gone.pem")
	if _, err := KafkaOpts(cfg); err == nil || !strings.HasPrefix(err.Error(), "kafka_tls_ca_file: ") {
		t.Errorf("unreadable CA file: err = %v, want one naming kafka_tls_ca_file", err)
	}
}

func TestKafkaAuthError(t *testing.T) {
	plain := errors.New("connection refused")
	for _, tc := range []struct {
		name string
		err  error
		auth bool
		hint string
	}{
		{"nil", nil, false, ""},
		{"other", plain, false, ""},
		{"sasl failed", fmt.Errorf("create topics: %w", kerr.SaslAuthenticationFailed), true, "kafka_sasl_password"},
		{"unsupported mechanism", kerr.UnsupportedSaslMechanism, true, "kafka_sasl_mechanism"},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true, "kafka_tls_ca_file"},
		{"hostname", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "kafka"}, true, "kafka_tls_server_name"},
		{"plaintext port", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, "kafka_tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := KafkaAuthError(tc.err)
			if errors.Is(got, ErrKafkaAuth) != tc.auth {
				t.Fatalf("KafkaAuthError(%v) = %v; ErrKafkaAuth %v, want %v", tc.err, got, !tc.auth, tc.auth)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("KafkaAuthError(%v) = %v, which no longer wraps the cause", tc.err, got)
			}
			if !strings.Contains(fmt.Sprint(got), tc.hint) {
				t.Errorf("KafkaAuthError(%v) = %v, want a hint naming %s", tc.err, got, tc.hint)
			}
		})
	}
}

// secureCluster starts a kfake cluster that speaks only TLS and requires
// SCRAM-SHA-256.
func secureCluster(t *testing.T, ca testCA, user, pass string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser(config.SASLScramSHA256, user, pass),
		kfake.TLS(ca.server),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func secureConfig(c *kfake.Cluster, ca testCA, user, pass string) config.Config {
	cfg := config.Default()
	cfg.Brokers = c.ListenAddrs()
	cfg.Partitions = 2
	cfg.ReplicationFactor = 1
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.AllowPrivateDestinations = true // the receiver listens on 127.0.0.1
	cfg.ShutdownGrace = 5 * time.Second
	cfg.KafkaTLS = true
	cfg.KafkaTLSCAFile = ca.caFile
	cfg.KafkaSASLMechanism = config.SASLScramSHA256
	cfg.KafkaSASLUsername = user
	cfg.KafkaSASLPassword = pass
	return cfg
}

// runService runs a service. done is closed when Run returns; stop
// cancels Run and returns its error.
func runService(t *testing.T, cfg config.Config, logs io.Writer) (svc *Service, done <-chan struct{}, stop func() error) {
	t.Helper()
	svc, err := NewService(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = svc.Run(ctx)
	}()
	stop = func() error {
		cancel()
		<-finished
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return svc, finished, stop
}

func waitReady(t *testing.T, svc *Service, done <-chan struct{}, stop func() error) {
	t.Helper()
	select {
	case <-svc.Ready():
	case <-done:
		t.Fatalf("service stopped before it was ready: %v", stop())
	case <-time.After(time.Minute):
		t.Fatal("service not ready within a minute")
	}
}

func postJSON(t *testing.T, url string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, data)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, data)
	}
	return out
}

// A serve against a cluster that requires TLS and SCRAM gets ready,
// delivers, and after a restart rebuilds its idempotency index through
// the same secured connection.
func TestServiceOverTLSAndSASL(t *testing.T) {
	const user, pass = "hookline", "kafka-Pa55word"
	ca := newTestCA(t)
	c := secureCluster(t, ca, user, pass)
	cfg := secureConfig(c, ca, user, pass)

	var delivered atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivered.Add(1)
	}))
	defer rcv.Close()

	var logs syncBuffer
	svc, done, stop := runService(t, cfg, &logs)
	waitReady(t, svc, done, stop)
	api := "http://" + svc.IngestAddr()
	postJSON(t, api+"/v1/endpoints", map[string]any{"id": "ep-1", "url": rcv.URL})
	event := map[string]any{"id": "evt-1", "type": "test.created", "endpoint_id": "ep-1", "payload": map[string]any{"n": 1}}
	if got := postJSON(t, api+"/v1/events", event); got["duplicate"] != false {
		t.Fatalf("first POST of evt-1 answered %v", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("evt-1 not delivered within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("service stopped with %v", err)
	}

	// The restart reads evt-1 back from the events topic with a consumer
	// of its own, which must use the secured connection too.
	svc, done, stop = runService(t, cfg, &logs)
	waitReady(t, svc, done, stop)
	if got := postJSON(t, "http://"+svc.IngestAddr()+"/v1/events", event); got["duplicate"] != true {
		t.Errorf("POST of evt-1 after a restart answered %v, want a duplicate", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("restarted service stopped with %v", err)
	}
	if n := delivered.Load(); n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
	if strings.Contains(logs.String(), pass) {
		t.Error("the logs contain the SASL password")
	}
}

// A wrong password or an untrusted broker certificate stops serve at once
// with an error that says what to check, not after a minute of retries.
func TestServiceRefusedByCluster(t *testing.T) {
	const user, pass = "hookline", "kafka-Pa55word"
	ca := newTestCA(t)
	c := secureCluster(t, ca, user, pass)
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"wrong password", func(c *config.Config) { c.KafkaSASLPassword = "not-the-password" }, "check kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password"},
		{"unknown user", func(c *config.Config) { c.KafkaSASLUsername = "nobody" }, "check kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password"},
		{"untrusted certificate", func(c *config.Config) { c.KafkaTLSCAFile = "" }, "check kafka_tls_ca_file and kafka_tls_server_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(c, ca, user, pass)
			tc.change(&cfg)
			var logs syncBuffer
			svc, done, stop := runService(t, cfg, &logs)
			select {
			case <-done:
			case <-svc.Ready():
				t.Fatal("service got ready against a cluster that must refuse it")
			case <-time.After(45 * time.Second):
				t.Fatalf("service still running after 45s; want it to stop with an error; logs:\n%s", logs.String())
			}
			err := stop()
			if err == nil {
				t.Fatal("Run returned nil")
			}
			if !errors.Is(err, ErrKafkaAuth) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v\nwant ErrKafkaAuth saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), cfg.KafkaSASLPassword) || strings.Contains(logs.String(), cfg.KafkaSASLPassword) {
				t.Error("the error or the logs contain the SASL password")
			}
			t.Logf("Run: %v", err)
		})
	}
}
