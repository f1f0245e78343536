package analytics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
)

func caFile(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clickhouse test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnOptionsMapping(t *testing.T) {
	ca := caFile(t)
	cfg := config.Default()
	cfg.ClickHouse = "ch.internal:9440"
	cfg.ClickHouseUsername = "writer"
	cfg.ClickHousePassword = "ch-Pa55word"
	cfg.ClickHouseTLS = true
	cfg.ClickHouseTLSCAFile = ca
	if got := ConnOptionsFrom(cfg); got != (ConnOptions{Addr: "ch.internal:9440", Username: "writer", Password: "ch-Pa55word", TLS: true, TLSCAFile: ca}) {
		t.Fatalf("ConnOptionsFrom = %+v", got)
	}

	for _, tc := range []struct {
		name     string
		opts     ConnOptions
		user     string
		tls      bool
		roots    bool
		insecure bool
		err      string
	}{
		{"plain, default user", ConnOptions{Addr: "127.0.0.1:9000"}, DefaultUsername, false, false, false, ""},
		{"credentials and CA", ConnOptionsFrom(cfg), "writer", true, true, false, ""},
		{"tls with system roots", ConnOptions{Addr: "ch:9440", TLS: true}, DefaultUsername, true, false, false, ""},
		{"tls without verification", ConnOptions{Addr: "ch:9440", TLS: true, TLSInsecureSkipVerify: true}, DefaultUsername, true, false, true, ""},
		{"unreadable CA", ConnOptions{Addr: "ch:9440", TLS: true, TLSCAFile: filepath.Join(t.TempDir(), "gone.pem")}, "", false, false, false, "clickhouse_tls_ca_file: open "},
		{"no address", ConnOptions{}, "", false, false, false, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.opts.clickhouseOptions()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Addr[0] != tc.opts.Addr || o.Auth.Username != tc.user || o.Auth.Password != tc.opts.Password || o.Auth.Database != "default" {
				t.Errorf("addr %v, auth %s/%t/%s", o.Addr, o.Auth.Username, o.Auth.Password == tc.opts.Password, o.Auth.Database)
			}
			if (o.TLS != nil) != tc.tls {
				t.Fatalf("TLS %v, want %v", o.TLS != nil, tc.tls)
			}
			if o.TLS != nil && ((o.TLS.RootCAs != nil) != tc.roots || o.TLS.InsecureSkipVerify != tc.insecure) {
				t.Errorf("TLS roots %v insecure %v, want %v %v", o.TLS.RootCAs != nil, o.TLS.InsecureSkipVerify, tc.roots, tc.insecure)
			}
		})
	}
}

// The real server refuses an unknown user, and Open says so.
func TestOpenRefusesWrongCredentials(t *testing.T) {
	addr := testAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const pass = "not-a-Pa55word"
	_, err := Open(ctx, ConnOptions{Addr: addr, Username: "nobody_here", Password: pass})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Open as nobody_here: %v, want ErrAuth", err)
	}
	for _, want := range []string{`user "nobody_here" was refused`, "clickhouse_username and clickhouse_password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), pass) {
		t.Errorf("error %q contains the password", err)
	}
	t.Logf("Open: %v", err)

	conn, err := Open(ctx, ConnOptions{Addr: addr})
	if err != nil {
		t.Fatalf("Open as the default user: %v", err)
	}
	_ = conn.Close()
}
