// Package signature signs and verifies webhook requests the Standard Webhooks
// way (https://www.standardwebhooks.com/), so that any receiver using a
// Standard Webhooks library accepts what hookline sends.
//
// Two schemes, chosen by the kind of each secret:
//
//   - v1, symmetric: the secret is "whsec_" and the standard base64 of an
//     HMAC-SHA256 key; the signature is "v1,<base64 HMAC of id.timestamp.body>".
//     Sender and receiver hold the same secret.
//   - v1a, asymmetric: the sender holds a signing key "whsk_" and the standard
//     base64 of a 32-byte ed25519 seed (a 64-byte ed25519 private key is
//     accepted too); the receiver holds only the public key "whpk_" and the
//     base64 of the 32-byte ed25519 public key. The signature is
//     "v1a,<base64 ed25519 signature of id.timestamp.body>". A leaked public
//     key lets nobody forge a request.
//
// While an endpoint rotates its secret it has several active secrets, and
// every request carries one signature per secret, space-separated: the
// receiver accepts the request as soon as one of them matches a key it
// knows, and skips versions it does not know.
package signature

import (
	"crypto/ed25519"
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

// Key prefixes.
const (
	// SecretPrefix starts a symmetric (v1, HMAC-SHA256) secret.
	SecretPrefix = "whsec_"
	// SigningKeyPrefix starts an asymmetric (v1a, ed25519) signing key.
	SigningKeyPrefix = "whsk_"
	// PublicKeyPrefix starts the public key receivers verify v1a with.
	PublicKeyPrefix = "whpk_"
)

// Schemes, the version prefix of a signature.
const (
	SchemeV1  = "v1"
	SchemeV1a = "v1a"
)

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

// v1Prefix and v1aPrefix start the signatures of each scheme; other
// versions are ignored.
const (
	v1Prefix  = SchemeV1 + ","
	v1aPrefix = SchemeV1a + ","
)

// NewSecret returns a fresh random secret.
func NewSecret() (string, error) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// NewSigningKey returns a fresh random v1a signing key ("whsk_...").
func NewSigningKey() (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	return SigningKeyPrefix + base64.StdEncoding.EncodeToString(seed), nil
}

// NewKey returns a fresh secret of a scheme: SchemeV1 ("whsec_") or
// SchemeV1a ("whsk_").
func NewKey(scheme string) (string, error) {
	switch scheme {
	case SchemeV1:
		return NewSecret()
	case SchemeV1a:
		return NewSigningKey()
	}
	return "", fmt.Errorf("unknown signature scheme %q (want %s or %s)", scheme, SchemeV1, SchemeV1a)
}

// Scheme returns the scheme a signing secret signs with, by its prefix:
// SchemeV1 for "whsec_", SchemeV1a for "whsk_", "" otherwise.
func Scheme(secret string) string {
	switch {
	case strings.HasPrefix(secret, SecretPrefix):
		return SchemeV1
	case strings.HasPrefix(secret, SigningKeyPrefix):
		return SchemeV1a
	}
	return ""
}

// PublicKey returns the "whpk_" public key of a v1a signing key, the one
// thing its receivers need.
func PublicKey(signingKey string) (string, error) {
	k, err := decodeSecret(signingKey)
	if err != nil {
		return "", err
	}
	if k.ed == nil {
		return "", fmt.Errorf("%w: a public key exists only for %q signing keys", ErrInvalidSecret, SigningKeyPrefix)
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.ed.Public().(ed25519.PublicKey)), nil
}

// ValidateSecret reports why s is not a usable signing secret ("whsec_" or
// "whsk_"). The error wraps ErrInvalidSecret and never contains the secret
// itself.
func ValidateSecret(s string) error {
	_, err := decodeSecret(s)
	return err
}

// key is a decoded signing secret: an HMAC key or an ed25519 private key.
type key struct {
	hmac []byte
	ed   ed25519.PrivateKey
}

func decodeSecret(s string) (key, error) {
	switch {
	case strings.HasPrefix(s, SecretPrefix):
		b, err := decodeB64(s, SecretPrefix)
		if err != nil {
			return key{}, err
		}
		if len(b) < MinSecretBytes {
			return key{}, fmt.Errorf("%w: key is %d bytes, at least %d are required", ErrInvalidSecret, len(b), MinSecretBytes)
		}
		return key{hmac: b}, nil
	case strings.HasPrefix(s, SigningKeyPrefix):
		b, err := decodeB64(s, SigningKeyPrefix)
		if err != nil {
			return key{}, err
		}
		switch len(b) {
		case ed25519.SeedSize:
			return key{ed: ed25519.NewKeyFromSeed(b)}, nil
		case ed25519.PrivateKeySize:
			priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
			if !hmac.Equal(priv[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
				return key{}, fmt.Errorf("%w: the public half of the 64-byte ed25519 key does not match its seed", ErrInvalidSecret)
			}
			return key{ed: priv}, nil
		}
		return key{}, fmt.Errorf("%w: ed25519 key is %d bytes, want a %d-byte seed or a %d-byte private key", ErrInvalidSecret, len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
	return key{}, fmt.Errorf("%w: must start with %q (HMAC, v1) or %q (ed25519, v1a)", ErrInvalidSecret, SecretPrefix, SigningKeyPrefix)
}

func decodeB64(s, prefix string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, prefix))
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrInvalidSecret, prefix)
	}
	return b, nil
}

func decodeSecrets(secrets []string) ([]key, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	keys := make([]key, len(secrets))
	for i, s := range secrets {
		k, err := decodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// signedContent is what both schemes sign: id.timestamp.body.
func signedContent(msgID string, unix int64, body []byte) []byte {
	return append(signedHead(msgID, unix, len(body)), body...)
}

// signedHead is the id.timestamp. in front of the body in what is signed,
// with room for extra bytes more.
func signedHead(msgID string, unix int64, extra int) []byte {
	b := make([]byte, 0, len(msgID)+22+extra)
	b = append(b, msgID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, unix, 10)
	return append(b, '.')
}

// mac is the HMAC-SHA256 under key of the concatenation of parts, which
// need not be joined first.
func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Sign returns the webhook-signature header value for a message: one
// signature per secret ("v1,<base64>" for a whsec_ secret, "v1a,<base64>"
// for a whsk_ key), space-separated, in the order of secrets.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return "", fmt.Errorf("sign message %s: %w", msgID, err)
	}
	head := signedHead(msgID, ts.Unix(), 0)
	// HMAC reads id.timestamp. and the body in turn; only ed25519 needs
	// them joined, and only then is the body copied.
	var content []byte
	b := make([]byte, 0, len(keys)*(len(v1aPrefix)+base64.StdEncoding.EncodedLen(ed25519.SignatureSize)+1))
	for i, k := range keys {
		if i > 0 {
			b = append(b, ' ')
		}
		if k.ed != nil {
			if content == nil {
				content = append(head[:len(head):len(head)], body...)
			}
			b = append(b, v1aPrefix...)
			b = base64.StdEncoding.AppendEncode(b, ed25519.Sign(k.ed, content))
			continue
		}
		b = append(b, v1Prefix...)
		b = base64.StdEncoding.AppendEncode(b, mac(k.hmac, head, body))
	}
	return string(b), nil
}

// The header names as http.Header keys them, so that Headers need not
// canonicalize them for every request.
var (
	canonicalID        = http.CanonicalHeaderKey(HeaderID)
	canonicalTimestamp = http.CanonicalHeaderKey(HeaderTimestamp)
	canonicalSignature = http.CanonicalHeaderKey(HeaderSignature)
)

// Headers sets the three Standard Webhooks headers of a request on h, as
// h.Set would.
func Headers(h http.Header, secrets []string, msgID string, ts time.Time, body []byte) error {
	sig, err := Sign(secrets, msgID, ts, body)
	if err != nil {
		return err
	}
	// One allocation for the three values; each header's slice is capped
	// at its own value, so an Add to one cannot overwrite the next.
	v := []string{msgID, strconv.FormatInt(ts.Unix(), 10), sig}
	h[canonicalID], h[canonicalTimestamp], h[canonicalSignature] = v[0:1:1], v[1:2:2], v[2:3:3]
	return nil
}

// verifyKey is a key a receiver verifies with.
type verifyKey struct {
	hmac []byte
	pub  ed25519.PublicKey
}

// ValidateVerifyKey reports why s is not a key a receiver can verify with:
// "whsec_" (v1), "whpk_" (v1a) or "whsk_" (v1a, its public half is used).
func ValidateVerifyKey(s string) error {
	_, err := decodeVerifyKey(s)
	return err
}

func decodeVerifyKey(s string) (verifyKey, error) {
	if strings.HasPrefix(s, PublicKeyPrefix) {
		b, err := decodeB64(s, PublicKeyPrefix)
		if err != nil {
			return verifyKey{}, err
		}
		if len(b) != ed25519.PublicKeySize {
			return verifyKey{}, fmt.Errorf("%w: ed25519 public key is %d bytes, want %d", ErrInvalidSecret, len(b), ed25519.PublicKeySize)
		}
		return verifyKey{pub: b}, nil
	}
	k, err := decodeSecret(s)
	if err != nil {
		return verifyKey{}, err
	}
	if k.ed != nil {
		return verifyKey{pub: k.ed.Public().(ed25519.PublicKey)}, nil
	}
	return verifyKey{hmac: k.hmac}, nil
}

// MaxSignatures is the most signatures Verify reads from one
// webhook-signature header; a header with more is refused unchecked, since
// each one checked costs the receiver CPU before the sender is known. It is
// also the most secrets an endpoint signs with at once.
const MaxSignatures = 10

// sigEncoding decodes a signature as its signer wrote it: strict base64
// refuses the other spellings of the same bytes (non-zero bits after the
// last full byte), so only the canonical string of a genuine signature
// verifies, as a receiver comparing strings would have it.
var sigEncoding = base64.StdEncoding.Strict()

// Verify checks a received request the way a receiver should: headers
// present, timestamp within tolerance of now (either side, against replays),
// and at least one signature made with one of keys. A key is a "whsec_"
// secret (checks v1 signatures) or a "whpk_" public key (checks v1a; a
// "whsk_" signing key works too). A tolerance of 0 means DefaultTolerance.
func Verify(keys []string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
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
	if d, ok := distance(now.Unix(), unix); !ok || d > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: timestamp %d is more than %s away from now", ErrTimestamp, unix, tolerance)
	}
	if len(keys) == 0 {
		return fmt.Errorf("verify message %s: %w", msgID, ErrNoSecrets)
	}
	n := 0
	for range strings.FieldsSeq(sigs) {
		if n++; n > MaxSignatures {
			return fmt.Errorf("%w: more than %d signatures", ErrInvalidHeaders, MaxSignatures)
		}
	}
	vks := make([]verifyKey, len(keys))
	for i, s := range keys {
		if vks[i], err = decodeVerifyKey(s); err != nil {
			return fmt.Errorf("verify message %s: key %d: %w", msgID, i+1, err)
		}
	}
	content := signedContent(msgID, unix, body)
	var macs [][]byte // computed once, on the first v1 signature
	for _, s := range strings.Fields(sigs) {
		if enc, ok := strings.CutPrefix(s, v1Prefix); ok {
			got, err := sigEncoding.DecodeString(enc)
			if err != nil {
				continue
			}
			if macs == nil {
				macs = make([][]byte, 0, len(vks))
				for _, k := range vks {
					if k.hmac != nil {
						macs = append(macs, mac(k.hmac, content))
					}
				}
			}
			for _, e := range macs {
				if hmac.Equal(got, e) {
					return nil
				}
			}
			continue
		}
		if enc, ok := strings.CutPrefix(s, v1aPrefix); ok {
			got, err := sigEncoding.DecodeString(enc)
			if err != nil || len(got) != ed25519.SignatureSize {
				continue
			}
			for _, k := range vks {
				if k.pub != nil && ed25519.Verify(k.pub, content, got) {
					return nil
				}
			}
		}
	}
	return ErrNoMatch
}

// distance is |a-b|, and false when it overflows an int64 (a timestamp
// absurdly far away).
func distance(a, b int64) (int64, bool) {
	d := a - b
	if (d > 0) != (a > b) && a != b {
		return 0, false
	}
	if d < 0 {
		d = -d
		if d < 0 {
			return 0, false
		}
	}
	return d, true
}
