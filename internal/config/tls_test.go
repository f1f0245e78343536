package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certFiles writes a self-signed certificate and its key, and the key of
// another certificate, as PEM files.
func certFiles(t *testing.T) (cert, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() (*ecdsa.PrivateKey, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, der
	}
	k, kder := newKey()
	_, oder := newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hookline test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", kder), write("other-key.pem", "PRIVATE KEY", oder)
}

func TestValidateKafkaAndClickHouseSecurity(t *testing.T) {
	cert, key, otherKey := certFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	secured := func(c *Config) {
		c.Brokers = []string{"kafka-1:9093"}
		c.KafkaTLS = true
		c.KafkaTLSCAFile = cert
		c.KafkaTLSCertFile = cert
		c.KafkaTLSKeyFile = key
		c.KafkaSASLMechanism = "scram-sha-512"
		c.KafkaSASLUsername = "hookline"
		c.KafkaSASLPassword = "pw"
		c.ClickHouse = "ch:9440"
		c.ClickHouseTLS = true
		c.ClickHouseTLSCAFile = cert
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"all set", secured, nil},
		{"plain without tls", func(c *Config) {
			c.Brokers = []string{"kafka-1:9092"}
			c.KafkaSASLMechanism, c.KafkaSASLUsername, c.KafkaSASLPassword = "PLAIN", "u", "p"
		}, nil},
		{"unknown mechanism", func(c *Config) {
			secured(c)
			c.KafkaSASLMechanism = "GSSAPI"
		}, []string{`kafka_sasl_mechanism: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"`}},
		{"mechanism without credentials", func(c *Config) {
			c.KafkaSASLMechanism = "SCRAM-SHA-256"
		}, []string{"kafka_sasl_username: required when kafka_sasl_mechanism is set", "kafka_sasl_password: required when kafka_sasl_mechanism is set"}},
		{"credentials without mechanism", func(c *Config) {
			c.KafkaSASLUsername = "u"
		}, []string{"kafka_sasl_mechanism: required when kafka_sasl_username or kafka_sasl_password is set"}},
		{"cert without key", func(c *Config) {
			secured(c)
			c.KafkaTLSKeyFile = ""
		}, []string{"kafka_tls_key_file: required with kafka_tls_cert_file"}},
		{"key without cert", func(c *Config) {
			secured(c)
			c.KafkaTLSCertFile = ""
		}, []string{"kafka_tls_cert_file: required with kafka_tls_key_file"}},
		{"unreadable ca", func(c *Config) {
			secured(c)
			c.KafkaTLSCAFile = missing
		}, []string{"kafka_tls_ca_file: open " + missing}},
		{"ca file without a certificate", func(c *Config) {
			secured(c)
			c.KafkaTLSCAFile = key
		}, []string{"kafka_tls_ca_file: " + key + " holds no PEM certificate"}},
		{"unreadable key", func(c *Config) {
			secured(c)
			c.KafkaTLSKeyFile = missing
		}, []string{"kafka_tls_key_file: open " + missing}},
		{"key of another certificate", func(c *Config) {
			secured(c)
			c.KafkaTLSKeyFile = otherKey
		}, []string{"kafka_tls_key_file: " + otherKey + ": tls: private key does not match public key"}},
		{"a key as the certificate", func(c *Config) {
			secured(c)
			c.KafkaTLSCertFile = key
		}, []string{"kafka_tls_cert_file: " + key + `: first PEM block is "PRIVATE KEY", want CERTIFICATE`}},
		{"tls files without kafka_tls", func(c *Config) {
			c.KafkaTLSCAFile = cert
			c.KafkaTLSInsecureSkipVerify = true
		}, []string{"kafka_tls_ca_file: has no effect unless kafka_tls is true", "kafka_tls_insecure_skip_verify: has no effect unless kafka_tls is true"}},
		{"unreadable clickhouse ca", func(c *Config) {
			secured(c)
			c.ClickHouseTLSCAFile = missing
		}, []string{"clickhouse_tls_ca_file: open " + missing}},
		{"clickhouse ca without tls", func(c *Config) {
			c.ClickHouseTLSCAFile = cert
		}, []string{"clickhouse_tls_ca_file: has no effect unless clickhouse_tls is true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if c.KafkaSASLPassword != "" && strings.Contains(err.Error(), c.KafkaSASLPassword) {
				t.Errorf("error %q contains the SASL password", err)
			}
		})
	}
}

func TestKafkaTLSConfig(t *testing.T) {
	cert, key, _ := certFiles(t)
	c := Default()
	if tc, err := c.KafkaTLSConfig(); tc != nil || err != nil {
		t.Fatalf("kafka_tls off: KafkaTLSConfig = %v, %v; want nil, nil", tc, err)
	}
	c.KafkaTLS, c.KafkaTLSCAFile, c.KafkaTLSCertFile, c.KafkaTLSKeyFile, c.KafkaTLSServerName = true, cert, cert, key, "kafka.internal"
	tc, err := c.KafkaTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka.internal" || tc.InsecureSkipVerify {
		t.Errorf("KafkaTLSConfig = roots %v, %d certificates, server name %q, insecure %v", tc.RootCAs != nil, len(tc.Certificates), tc.ServerName, tc.InsecureSkipVerify)
	}
}

// Passwords come from the environment and never show in flag defaults.
func TestSecurityPasswordsFromEnv(t *testing.T) {
	fs := newFlagSet()
	cfg, err := Load(fs, []string{"--brokers", "kafka-1:9092", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--clickhouse-username", "writer"},
		env(map[string]string{"HOOKLINE_KAFKA_SASL_PASSWORD": "kafka-pw", "HOOKLINE_CLICKHOUSE_PASSWORD": "ch-pw"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaSASLPassword != "kafka-pw" || cfg.ClickHousePassword != "ch-pw" || cfg.ClickHouseUsername != "writer" {
		t.Errorf("passwords %q %q, clickhouse user %q", cfg.KafkaSASLPassword, cfg.ClickHousePassword, cfg.ClickHouseUsername)
	}
	d := Default()
	d.KafkaSASLPassword, d.ClickHousePassword = "kafka-pw", "ch-pw"
	fs = newFlagSet()
	d.RegisterFlags(fs)
	for _, name := range []string{"kafka-sasl-password", "clickhouse-password"} {
		if got := fs.Lookup(name).DefValue; got != "(set)" {
			t.Errorf("--%s default shows %q, want (set)", name, got)
		}
	}
}
