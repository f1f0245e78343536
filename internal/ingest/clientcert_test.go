package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

func clientPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
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

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A client certificate is set on create, replaced or removed on PATCH, is
// validated on every write, and no answer shows its key.
func TestEndpointClientCertificate(t *testing.T) {
	e := newEnv(t)
	h := e.server(t, nil).Handler()
	cert, key := clientPair(t)
	_, otherKey := clientPair(t)
	keyLine := strings.Split(key, "\n")[1]

	res := do(t, h, "POST", "/v1/endpoints", jsonBody(t, map[string]any{"id": "ep_mtls", "url": "https://example.com/m", "client_cert_pem": cert, "client_key_pem": key}))
	if res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.raw)
	}
	if res.str("client_cert_pem") != cert || res.str("client_key_pem") != "(private key)" || len(res.str("client_cert_sha256")) != 64 {
		t.Errorf("create answered %s", res.raw)
	}
	if ep, _ := e.registry.Get("ep_mtls"); ep.ClientKeyPEM != key || ep.ClientCertPEM != cert {
		t.Fatal("the registry does not hold the certificate and key")
	}
	for _, path := range []string{"/v1/endpoints", "/v1/endpoints/ep_mtls"} {
		if res := do(t, h, "GET", path, ""); res.status != http.StatusOK || strings.Contains(res.raw, keyLine) {
			t.Errorf("GET %s = %d, shows the key: %v", path, res.status, strings.Contains(res.raw, keyLine))
		}
	}

	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		field              string
	}{
		{"create with a key of another certificate", "POST", "/v1/endpoints", map[string]any{"url": "https://example.com/m", "client_cert_pem": cert, "client_key_pem": otherKey}, "client_key_pem"},
		{"create with a certificate only", "POST", "/v1/endpoints", map[string]any{"url": "https://example.com/m", "client_cert_pem": cert}, "client_key_pem"},
		{"patch with a key only", "PATCH", "/v1/endpoints/ep_1", map[string]any{"client_key_pem": key}, "client_cert_pem"},
		{"patch with a broken certificate", "PATCH", "/v1/endpoints/ep_mtls", map[string]any{"client_cert_pem": "not a certificate"}, "client_cert_pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, tc.method, tc.path, jsonBody(t, tc.body))
			if res.status != http.StatusBadRequest || res.str("field") != tc.field {
				t.Fatalf("%s %s = %d %s, want 400 naming %s", tc.method, tc.path, res.status, res.raw, tc.field)
			}
			if strings.Contains(res.raw, keyLine) {
				t.Errorf("the error quotes the key: %s", res.raw)
			}
		})
	}

	res = do(t, h, "PATCH", "/v1/endpoints/ep_mtls", `{"client_cert_pem":"","client_key_pem":""}`)
	if res.status != http.StatusOK || res.str("client_cert_pem") != "" {
		t.Fatalf("remove = %d %s", res.status, res.raw)
	}
	if ep, _ := e.registry.Get("ep_mtls"); ep.HasClientCert() || ep.ClientKeyPEM != "" {
		t.Error("the certificate was not removed")
	}
}
