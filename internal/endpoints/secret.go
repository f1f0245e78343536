package endpoints

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"

	"github.com/hookline/hookline/signature"
)

// GenerateSecret returns a new signing secret: "whsec_" and the standard
// base64 of 32 random bytes.
func GenerateSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate signing secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// GenerateID returns a new random endpoint id, "ep_" and 26 base32 characters.
func GenerateID() string {
	return "ep_" + strings.ToLower(rand.Text())
}

// TenantIDPrefix is how the ids of the endpoints a tenant's own API token
// creates start: the tenant and a dot. Ids are global; the prefix keeps
// each tenant's names apart, so that no tenant can learn, by trying an id,
// whether another holds it.
func TenantIDPrefix(tenant string) string {
	return tenant + "."
}

// GenerateKey returns a new secret of a signature scheme: "v1" (a whsec_
// HMAC secret) or "v1a" (a whsk_ ed25519 signing key).
func GenerateKey(scheme string) (string, error) {
	return signature.NewKey(scheme)
}

// Mask shortens a secret for display: "whsec_abcd…" keeps only the first four
// characters of the base64 part, enough to tell secrets apart during rotation.
func Mask(secret string) string {
	prefix := SecretPrefix
	switch {
	case strings.HasPrefix(secret, signature.SigningKeyPrefix):
		prefix = signature.SigningKeyPrefix
	case strings.HasPrefix(secret, encryptedPrefix):
		return encryptedPrefix + "…"
	}
	b64 := strings.TrimPrefix(secret, prefix)
	if len(b64) < 16 {
		return prefix + "…"
	}
	return prefix + b64[:4] + "…"
}

// Masked returns a copy of the endpoint with every secret and the client key
// masked, for list and detail output. The client certificate is public and
// stays.
func (e Endpoint) Masked() Endpoint {
	e = e.clone()
	for i, s := range e.Secrets {
		e.Secrets[i] = Mask(s)
	}
	for i := range e.RetiringSecrets {
		e.RetiringSecrets[i].Secret = Mask(e.RetiringSecrets[i].Secret)
	}
	e.ClientKeyPEM = MaskKey(e.ClientKeyPEM)
	// A custom header is often a credential (Authorization): show that it
	// is set, not what it is.
	for name := range e.Headers {
		e.Headers[name] = MaskedHeader
	}
	return e
}

// MaskedHeader replaces each custom header value in a masked endpoint.
const MaskedHeader = "…"

// MaskKey hides a client private key for display: what kind of value it is,
// none of it.
func MaskKey(key string) string {
	switch {
	case key == "":
		return ""
	case strings.HasPrefix(key, encryptedPrefix):
		return encryptedPrefix + "…"
	}
	return "(private key)"
}

// PublicKeys returns the whpk_ public keys of the endpoint's v1a signing
// keys (current, then retiring), which its receivers verify with. They are
// not secret.
func (e Endpoint) PublicKeys() []string {
	var out []string
	add := func(s string) {
		if signature.Scheme(s) == signature.SchemeV1a {
			if pk, err := signature.PublicKey(s); err == nil {
				out = append(out, pk)
			}
		}
	}
	for _, s := range e.Secrets {
		add(s)
	}
	for _, r := range e.RetiringSecrets {
		add(r.Secret)
	}
	return out
}

// clone copies the slices so a caller cannot change the registry's copy.
func (e Endpoint) clone() Endpoint {
	if e.Secrets != nil {
		e.Secrets = append([]string(nil), e.Secrets...)
	}
	if e.RetiringSecrets != nil {
		e.RetiringSecrets = append([]RetiringSecret(nil), e.RetiringSecrets...)
	}
	if e.EventTypes != nil {
		e.EventTypes = append([]string(nil), e.EventTypes...)
	}
	e.Headers = maps.Clone(e.Headers)
	return e
}
