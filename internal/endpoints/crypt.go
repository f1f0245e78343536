package endpoints

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// encryptedPrefix starts a secret encrypted at rest:
// "enc:v1:<key id>:<base64 of nonce and AES-256-GCM ciphertext>". No
// signing secret starts like this, so plaintext records written before
// encryption (or without a key) read as they always did.
const encryptedPrefix = "enc:v1:"

// ErrNoSecretKey is returned when an encrypted secret cannot be decrypted
// because no configured key has its key id.
var ErrNoSecretKey = errors.New("no secret_key with this key id is configured")

// SecretBox encrypts endpoint secrets for the endpoints topic with AES-256-GCM.
// The first key encrypts; every key decrypts, so the key can be rotated
// (see docs/security.md). The endpoint id is authenticated data: a
// ciphertext copied to another endpoint's record does not decrypt.
type SecretBox struct {
	keys []boxKey
}

type boxKey struct {
	id   string
	aead cipher.AEAD
}

// NewSecretBox returns a box for 32-byte keys, the first one encrypting.
func NewSecretBox(keys [][]byte) (*SecretBox, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret box: no key")
	}
	b := &SecretBox{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("secret box: key %d is %d bytes, want 32", i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secret box: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret box: key %d: %w", i+1, err)
		}
		b.keys = append(b.keys, boxKey{id: KeyID(k), aead: aead})
	}
	return b, nil
}

// KeyID names a key without revealing it: the first 8 hex digits of a
// domain-separated SHA-256 of it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("hookline endpoint secret key\x00"), key...))
	return hex.EncodeToString(sum[:4])
}

// Seal encrypts secret for the endpoint id. An already sealed value is
// returned as is.
func (b *SecretBox) Seal(endpointID, secret string) (string, error) {
	if strings.HasPrefix(secret, encryptedPrefix) {
		return secret, nil
	}
	k := b.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt secret of endpoint %s: %w", endpointID, err)
	}
	ct := k.aead.Seal(nonce, nonce, []byte(secret), []byte(endpointID))
	return encryptedPrefix + k.id + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value Seal made for the endpoint id; a value that is not
// encrypted (a plaintext record) is returned as is. Errors never contain
// the value.
func (b *SecretBox) Open(endpointID, value string) (string, error) {
	rest, ok := strings.CutPrefix(value, encryptedPrefix)
	if !ok {
		return value, nil
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("decrypt secret of endpoint %s: malformed encrypted value", endpointID)
	}
	ct, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("decrypt secret of endpoint %s: malformed encrypted value", endpointID)
	}
	if b == nil {
		return "", fmt.Errorf("decrypt secret of endpoint %s (key id %s): %w", endpointID, id, ErrNoSecretKey)
	}
	for _, k := range b.keys {
		if k.id != id {
			continue
		}
		ns := k.aead.NonceSize()
		if len(ct) < ns {
			return "", fmt.Errorf("decrypt secret of endpoint %s: malformed encrypted value", endpointID)
		}
		pt, err := k.aead.Open(nil, ct[:ns], ct[ns:], []byte(endpointID))
		if err != nil {
			return "", fmt.Errorf("decrypt secret of endpoint %s with key %s: authentication failed (wrong endpoint or tampered record)", endpointID, id)
		}
		return string(pt), nil
	}
	return "", fmt.Errorf("decrypt secret of endpoint %s (key id %s): %w", endpointID, id, ErrNoSecretKey)
}

// IsEncrypted reports whether a stored secret value is encrypted.
func IsEncrypted(value string) bool { return strings.HasPrefix(value, encryptedPrefix) }

// seal returns a copy of e with every secret and the client key encrypted;
// with a nil box, e.
func (b *SecretBox) seal(e Endpoint) (Endpoint, error) {
	if b == nil {
		return e, nil
	}
	e = e.clone()
	var err error
	for i, s := range e.Secrets {
		if e.Secrets[i], err = b.Seal(e.ID, s); err != nil {
			return e, err
		}
	}
	for i, r := range e.RetiringSecrets {
		if e.RetiringSecrets[i].Secret, err = b.Seal(e.ID, r.Secret); err != nil {
			return e, err
		}
	}
	if e.ClientKeyPEM != "" {
		if e.ClientKeyPEM, err = b.Seal(e.ID, e.ClientKeyPEM); err != nil {
			return e, err
		}
	}
	return e, nil
}

// open decrypts every secret of e and its client key in place. A secret that cannot be
// decrypted stays encrypted (so the endpoint cannot sign, and a write of it
// fails validation) and the first error is returned.
func (b *SecretBox) open(e *Endpoint) error {
	var first error
	try := func(s *string) {
		pt, err := b.Open(e.ID, *s)
		if err != nil {
			if first == nil {
				first = err
			}
			return
		}
		*s = pt
	}
	for i := range e.Secrets {
		try(&e.Secrets[i])
	}
	for i := range e.RetiringSecrets {
		try(&e.RetiringSecrets[i].Secret)
	}
	if e.ClientKeyPEM != "" {
		try(&e.ClientKeyPEM)
	}
	return first
}
