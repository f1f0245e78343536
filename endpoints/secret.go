package endpoints

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
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

// Mask shortens a secret for display: "whsec_abcd…" keeps only the first four
// characters of the base64 part, enough to tell secrets apart during rotation.
func Mask(secret string) string {
	b64 := strings.TrimPrefix(secret, SecretPrefix)
	if len(b64) < 16 {
		return SecretPrefix + "…"
	}
	return SecretPrefix + b64[:4] + "…"
}

// Masked returns a copy of the endpoint with every secret masked, for list
// and detail output.
func (e Endpoint) Masked() Endpoint {
	e = e.clone()
	for i, s := range e.Secrets {
		e.Secrets[i] = Mask(s)
	}
	return e
}

// clone copies the slices so a caller cannot change the registry's copy.
func (e Endpoint) clone() Endpoint {
	if e.Secrets != nil {
		e.Secrets = append([]string(nil), e.Secrets...)
	}
	if e.EventTypes != nil {
		e.EventTypes = append([]string(nil), e.EventTypes...)
	}
	return e
}
