package endpoints

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxClientPEMLen bounds client_cert_pem (a certificate and its chain) and
// client_key_pem.
const MaxClientPEMLen = 16 << 10

// HasClientCert reports whether deliveries to the endpoint present a client
// certificate (mutual TLS).
func (e Endpoint) HasClientCert() bool { return e.ClientCertPEM != "" }

// ClientCertificate parses the endpoint's client certificate and key. The
// error never contains the key.
func (e Endpoint) ClientCertificate() (tls.Certificate, error) {
	if err := checkClientCert(e.ClientCertPEM, e.ClientKeyPEM); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair([]byte(e.ClientCertPEM), []byte(e.ClientKeyPEM))
}

// ClientCertFingerprint is the hex SHA-256 of the client certificate and
// key as stored: it changes whenever either does. "" without a certificate.
func (e Endpoint) ClientCertFingerprint() string {
	if !e.HasClientCert() {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(e.ClientCertPEM))
	h.Write([]byte{0})
	h.Write([]byte(e.ClientKeyPEM))
	return hex.EncodeToString(h.Sum(nil))
}

// ClientCertSHA256 is the hex SHA-256 of the client certificate's DER, the
// fingerprint tools such as openssl x509 -fingerprint -sha256 show; "" when
// there is none or it does not parse.
func (e Endpoint) ClientCertSHA256() string {
	block, _ := pem.Decode([]byte(e.ClientCertPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return ""
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// checkClientCert checks that a client certificate and key are both set or
// both empty, parse, and belong together. The error is a *FieldError and
// never contains the key.
func checkClientCert(certPEM, keyPEM string) error {
	switch {
	case certPEM == "" && keyPEM == "":
		return nil
	case certPEM == "":
		return &FieldError{"client_cert_pem", "is required with client_key_pem"}
	case keyPEM == "":
		return &FieldError{"client_key_pem", "is required with client_cert_pem"}
	case len(certPEM) > MaxClientPEMLen:
		return &FieldError{"client_cert_pem", fmt.Sprintf("is longer than %d bytes", MaxClientPEMLen)}
	case len(keyPEM) > MaxClientPEMLen:
		return &FieldError{"client_key_pem", fmt.Sprintf("is longer than %d bytes", MaxClientPEMLen)}
	case strings.HasPrefix(keyPEM, encryptedPrefix):
		return &FieldError{"client_key_pem", "is encrypted and this process has no secret_key that decrypts it"}
	}
	if err := checkCertPEM(certPEM); err != nil {
		return &FieldError{"client_cert_pem", err.Error()}
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		// crypto/tls describes what is wrong with the key without quoting it.
		return &FieldError{"client_key_pem", strings.TrimPrefix(err.Error(), "tls: ")}
	}
	return nil
}

// checkCertPEM checks that s is one or more PEM certificates that parse,
// and nothing else.
func checkCertPEM(s string) error {
	rest := []byte(s)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n+1, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no PEM certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return errors.New("has data after the last PEM certificate")
	}
	return nil
}
