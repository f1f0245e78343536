package processors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// pki is a test CA that signs a server certificate for 127.0.0.1 and
// client certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	k := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hookline test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &pki{cert: cert, key: k, pool: pool}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial atomic.Int64

// issue signs a leaf certificate and returns it and its key as PEM.
func (p *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	t.Helper()
	k := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &k.PublicKey, p.key)
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

// mtlsReceiver is an HTTPS endpoint that requires a client certificate
// signed by the CA and records the common names it saw.
func mtlsReceiver(t *testing.T, ca *pki) (*httptest.Server, *atomic.Value) {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, "receiver", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestSenderClientCertificate(t *testing.T) {
	ca := newPKI(t)
	srv, seen := mtlsReceiver(t, ca)
	sender := NewSender(SenderOptions{Destinations: DestinationPolicy{AllowPrivate: true}, RootCAs: ca.pool})
	defer sender.Close()
	secret := newSecret(t)
	ep := endpoints.Endpoint{ID: "ep_mtls", URL: srv.URL + "/hook", Secrets: []string{secret}, Enabled: true, TimeoutMS: 5000}

	certA, keyA := ca.issue(t, "client-a", x509.ExtKeyUsageClientAuth)
	certB, keyB := ca.issue(t, "client-b", x509.ExtKeyUsageClientAuth)
	strangerCA := newPKI(t)
	certX, keyX := strangerCA.issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	for _, tc := range []struct {
		name      string
		cert, key string
		verdict   Verdict
		class     ErrorClass
		cn        string // the certificate the receiver saw
	}{
		{"with the certificate", certA, keyA, Delivered, ClassNone, "client-a"},
		{"without a certificate", "", "", Retryable, ClassConnection, ""},
		{"a certificate of another CA", certX, keyX, Retryable, ClassConnection, ""},
		{"a changed certificate", certB, keyB, Delivered, ClassNone, "client-b"},
		{"the certificate again", certA, keyA, Delivered, ClassNone, "client-a"},
		{"a key that is still encrypted", certA, "enc:v1:0011aabb:AAAA", Permanent, ClassClientCert, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen.Store("")
			e := ep
			e.ClientCertPEM, e.ClientKeyPEM = tc.cert, tc.key
			res := sender.Send(t.Context(), e, "msg_1", time.Now(), []byte(`{"n":1}`))
			if res.Verdict != tc.verdict || res.Class != tc.class {
				t.Fatalf("Send = %v/%q (%v), want %v/%q", res.Verdict, res.Class, res.Err, tc.verdict, tc.class)
			}
			if got := seen.Load(); got != tc.cn {
				t.Errorf("the receiver saw client certificate %q, want %q", got, tc.cn)
			}
			if res.Err != nil && strings.Contains(res.Err.Error(), "PRIVATE KEY") {
				t.Errorf("error %q quotes the key", res.Err)
			}
		})
	}

	// A transport per endpoint and certificate, not per request: a changed
	// certificate replaced the endpoint's, it did not add one.
	sender.mu.Lock()
	n := len(sender.mtls)
	sender.mu.Unlock()
	if n != 1 {
		t.Errorf("%d cached client-certificate transports for one endpoint, want 1", n)
	}
}

// An endpoint's own transport keeps the SSRF guard.
func TestSenderClientCertificateKeepsDestinationGuard(t *testing.T) {
	ca := newPKI(t)
	srv, seen := mtlsReceiver(t, ca)
	sender := NewSender(SenderOptions{RootCAs: ca.pool}) // guard on: 127.0.0.1 is refused
	defer sender.Close()
	cert, key := ca.issue(t, "client-a", x509.ExtKeyUsageClientAuth)
	ep := endpoints.Endpoint{ID: "ep_mtls", URL: srv.URL, Secrets: []string{newSecret(t)}, Enabled: true, ClientCertPEM: cert, ClientKeyPEM: key}
	res := sender.Send(t.Context(), ep, "msg_1", time.Now(), []byte(`{}`))
	if res.Class != ClassDestinationRefused || !errors.Is(res.Err, ErrDestinationRefused) {
		t.Fatalf("Send = %v/%q (%v), want destination_refused", res.Verdict, res.Class, res.Err)
	}
	if got := seen.Load(); got != nil {
		t.Errorf("the receiver was reached (client certificate %q)", got)
	}
}
