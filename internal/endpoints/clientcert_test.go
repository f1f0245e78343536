package endpoints

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
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// clientPair returns a self-signed client certificate and its PKCS#8 key,
// as PEM.
func clientPair(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestValidateClientCert(t *testing.T) {
	cert, key := clientPair(t, "acme")
	otherCert, otherKey := clientPair(t, "other")
	secret, _ := GenerateSecret()
	for _, tc := range []struct {
		name       string
		cert, key  string
		field, msg string // "" field: valid
	}{
		{"none", "", "", "", ""},
		{"pair", cert, key, "", ""},
		{"chain", cert + otherCert, key, "", ""},
		{"cert without key", cert, "", "client_key_pem", "is required with client_cert_pem"},
		{"key without cert", "", key, "client_cert_pem", "is required with client_key_pem"},
		{"key of another certificate", cert, otherKey, "client_key_pem", "private key does not match public key"},
		{"key as certificate", key, key, "client_cert_pem", `PEM block 1 is "PRIVATE KEY", want CERTIFICATE`},
		{"not PEM", "hello", key, "client_cert_pem", "holds no PEM certificate"},
		{"garbage certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key, "client_cert_pem", "certificate 1 does not parse"},
		{"trailing data", cert + "junk", key, "client_cert_pem", "has data after the last PEM certificate"},
		{"garbage key", cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "client_key_pem", "failed to parse private key"},
		{"encrypted key without box", cert, "enc:v1:0011aabb:AAAA", "client_key_pem", "no secret_key"},
		{"too long", cert + strings.Repeat(" ", MaxClientPEMLen), key, "client_cert_pem", "is longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Endpoint{ID: "ep_1", URL: "https://example.com/hook", Secrets: []string{secret}, Enabled: true, ClientCertPEM: tc.cert, ClientKeyPEM: tc.key}
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			fe, ok := errors.AsType[*FieldError](err)
			if !ok || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.msg) {
				t.Fatalf("Validate = %v, want %s: ...%s...", err, tc.field, tc.msg)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") && tc.field == "client_key_pem" {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

// The client key is encrypted in the topic, decrypted on read, masked for
// display; the certificate is public and stays as is.
func TestClientKeyAtRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cert, key := clientPair(t, "acme")
		c := newCluster(t)
		box := mustBox(t, testKey(1))
		r, _ := startBoxedRegistry(t, c, box)
		secret, _ := GenerateSecret()
		e := Endpoint{ID: "ep_mtls", URL: "https://example.com/hook", Secrets: []string{secret}, Enabled: true, ClientCertPEM: cert, ClientKeyPEM: key}
		if err := r.Create(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		for _, v := range rawValues(t, c) {
			if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, strings.Split(key, "\n")[1]) {
				t.Fatalf("the stored record holds the client key in plaintext: %s", v)
			}
			if !strings.Contains(v, `"client_key_pem":"enc:v1:`) {
				t.Errorf("the stored record has no encrypted client key: %s", v)
			}
		}

		// Another process with the key reads it back.
		r2, _ := startBoxedRegistry(t, c, box)
		got, ok := r2.Get("ep_mtls")
		if !ok || got.ClientKeyPEM != key || got.ClientCertPEM != cert {
			t.Fatalf("read back: found %v, key decrypted %v, cert kept %v", ok, got.ClientKeyPEM == key, got.ClientCertPEM == cert)
		}
		if _, err := got.ClientCertificate(); err != nil {
			t.Fatalf("ClientCertificate: %v", err)
		}
		m := got.Masked()
		if m.ClientKeyPEM != "(private key)" || m.ClientCertPEM != cert {
			t.Errorf("masked key %q, cert kept %v", m.ClientKeyPEM, m.ClientCertPEM == cert)
		}

		// One without it keeps the ciphertext, cannot use it, and refuses to
		// rewrite the endpoint.
		r3, _ := startBoxedRegistry(t, c, nil)
		enc, _ := r3.Get("ep_mtls")
		if !IsEncrypted(enc.ClientKeyPEM) || enc.Masked().ClientKeyPEM != "enc:v1:…" {
			t.Fatalf("without the key: client key %.12q…, masked %q", enc.ClientKeyPEM, enc.Masked().ClientKeyPEM)
		}
		if _, err := enc.ClientCertificate(); err == nil {
			t.Error("an encrypted client key parsed")
		}
	})
}

func TestClientCertFingerprint(t *testing.T) {
	cert, key := clientPair(t, "acme")
	cert2, key2 := clientPair(t, "acme")
	a := Endpoint{ClientCertPEM: cert, ClientKeyPEM: key}
	b := Endpoint{ClientCertPEM: cert2, ClientKeyPEM: key2}
	if (Endpoint{}).ClientCertFingerprint() != "" {
		t.Error("an endpoint without a certificate has a fingerprint")
	}
	if fa, again := a.ClientCertFingerprint(), a.ClientCertFingerprint(); fa == b.ClientCertFingerprint() || fa != again {
		t.Error("fingerprints do not tell certificates apart")
	}
	if len(a.ClientCertSHA256()) != 64 {
		t.Errorf("ClientCertSHA256 = %q", a.ClientCertSHA256())
	}
}
