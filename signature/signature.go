// Package signature signs and verifies webhook requests the Standard Webhooks
// v1 way (https://www.standardwebhooks.com/), so that any receiver using a
// Standard Webhooks library accepts what hookline sends.
//
// A secret is "whsec_" followed by the standard base64 of the HMAC key. While
// an endpoint rotates its secret it has several active secrets, and every
// request carries one signature per secret: the receiver accepts the request
// as soon as one of them matches the secret it knows.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest HMAC key accepted: shorter keys are too easy
// to brute-force from observed signatures.
const MinSecretBytes = 24

// secretBytes is the key length NewSecret generates, as the spec recommends.
const secretBytes = 32

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, the value Standard Webhooks libraries use.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify, to be tested with errors.Is.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidHeaders = errors.New("invalid webhook-timestamp header")
	ErrTimestamp      = errors.New("webhook-timestamp outside tolerance")
	ErrNoMatch        = errors.New("no signature matches")
	ErrNoSecrets      = errors.New("no secrets")
	ErrInvalidSecret  = errors.New("invalid webhook secret")
)

// v1Prefix starts every version-1 signature; other versions are ignored.
const v1Prefix = "v1,"

// NewSecret returns a fresh random secret.
func NewSecret() (string, error) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ValidateSecret reports why s is not a usable secret. The error wraps
// ErrInvalidSecret and never contains the secret itself.
func ValidateSecret(s string) error {
	_, err := decodeSecret(s)
	return err
}

func decodeSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, at least %d are required", ErrInvalidSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

func decodeSecrets(secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		k, err := decodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64>" per secret, space-separated, in the order of secrets.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return "", fmt.Errorf("sign message %s: %w", msgID, err)
	}
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v1Prefix)
		b.WriteString(base64.StdEncoding.EncodeToString(mac(k, msgID, ts.Unix(), body)))
	}
	return b.String(), nil
}

// Headers sets the three Standard Webhooks headers of a request on h.
func Headers(h http.Header, secrets []string, msgID string, ts time.Time, body []byte) error {
	sig, err := Sign(secrets, msgID, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verify checks a received request the way a receiver should: headers
// present, timestamp within tolerance of now (either side, against replays),
// and at least one v1 signature made with one of secrets. A tolerance of 0
// means DefaultTolerance.
func Verify(secrets []string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	msgID, tsv, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if msgID == "" || tsv == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrInvalidHeaders, tsv)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(unix, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now, tolerance %s", ErrTimestamp, d.Truncate(time.Second), tolerance)
	}
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return fmt.Errorf("verify message %s: %w", msgID, err)
	}
	expected := make([][]byte, len(keys))
	for i, k := range keys {
		expected[i] = mac(k, msgID, unix, body)
	}
	for _, s := range strings.Fields(sigs) {
		enc, ok := strings.CutPrefix(s, v1Prefix)
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		for _, e := range expected {
			if hmac.Equal(got, e) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
