package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/hookline/hookline/internal/processors"
)

// API token scopes.
const (
	// ScopeIngest may post events.
	ScopeIngest = "ingest"
	// ScopeAdmin may manage endpoints.
	ScopeAdmin = "admin"
)

// Token is one bearer token of the ingest and admin API. Only its SHA-256
// is stored, so a leaked config file does not leak a usable token.
type Token struct {
	// Hash is the hex SHA-256 of the token, optionally prefixed "sha256:".
	Hash string `yaml:"hash"`
	// Scopes are ingest and/or admin.
	Scopes []string `yaml:"scopes"`
	// Tenants the token may act for; empty means every tenant.
	Tenants []string `yaml:"tenants"`
	// Name identifies the token in logs and metrics (never the token).
	Name string `yaml:"name"`
}

// HashToken returns the value of Token.Hash for a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Digest returns the 32 bytes of the token's hash.
func (t Token) Digest() ([]byte, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(t.Hash)), "sha256:")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("hash: want the 64 hex digits of the token's SHA-256 (printf %s \"$TOKEN\" | sha256sum)")
	}
	return b, nil
}

func (t Token) check() error {
	if _, err := t.Digest(); err != nil {
		return err
	}
	if len(t.Scopes) == 0 {
		return errors.New("scopes: at least one of ingest, admin is required")
	}
	for _, s := range t.Scopes {
		if s != ScopeIngest && s != ScopeAdmin {
			return fmt.Errorf("scopes: %q is neither %s nor %s", s, ScopeIngest, ScopeAdmin)
		}
	}
	return nil
}

// HasScope reports whether the token carries scope.
func (t Token) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// parseTokens reads the flag and environment form:
// hash:scope+scope[:tenant+tenant[:name]], comma-separated.
func parseTokens(s string) ([]Token, error) {
	var out []Token
	for i, item := range splitList(s) {
		parts := strings.Split(item, ":")
		if len(parts) > 0 && parts[0] == "sha256" {
			parts = parts[1:]
		}
		if len(parts) < 2 || len(parts) > 4 {
			return nil, fmt.Errorf("token %d: want hash:scope+scope[:tenant+tenant[:name]]", i)
		}
		t := Token{Hash: parts[0], Scopes: splitPlus(parts[1])}
		if len(parts) > 2 {
			t.Tenants = splitPlus(parts[2])
		}
		if len(parts) > 3 {
			t.Name = parts[3]
		}
		out = append(out, t)
	}
	return out, nil
}

func splitPlus(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, "+") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func formatTokens(ts []Token) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = strings.Join([]string{t.Hash, strings.Join(t.Scopes, "+"), strings.Join(t.Tenants, "+"), t.Name}, ":")
	}
	return strings.Join(parts, ",")
}

// SecretKeyLen is the length of an endpoint-secret encryption key (AES-256).
const SecretKeyLen = 32

// ParseSecretKeys decodes comma- or newline-separated base64 keys. Errors
// never contain key material.
func ParseSecretKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		k, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			k, err = base64.RawStdEncoding.DecodeString(f)
		}
		if err != nil {
			return nil, fmt.Errorf("key %d is not standard base64", i+1)
		}
		if len(k) != SecretKeyLen {
			return nil, fmt.Errorf("key %d decodes to %d bytes, want %d (head -c 32 /dev/urandom | base64)", i+1, len(k), SecretKeyLen)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}

// SecretKeys returns the endpoint-secret encryption keys, the first being
// the one that encrypts, from secret_key or secret_key_file; nil when
// neither is set.
func (c Config) SecretKeys() ([][]byte, error) {
	switch {
	case c.SecretKey != "":
		keys, err := ParseSecretKeys(c.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("secret_key: %w", err)
		}
		return keys, nil
	case c.SecretKeyFile != "":
		b, err := os.ReadFile(c.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("secret_key_file: %w", err)
		}
		keys, err := ParseSecretKeys(string(b))
		if err != nil {
			return nil, fmt.Errorf("secret_key_file %s: %w", c.SecretKeyFile, err)
		}
		return keys, nil
	}
	return nil, nil
}

// Destinations is the SSRF policy of deliveries, and of the endpoint URLs
// accepted at registration: allow_private_destinations and
// allow_destinations.
func (c Config) Destinations() processors.DestinationPolicy {
	return processors.DestinationPolicy{AllowPrivate: c.AllowPrivateDestinations, Allow: c.DestinationAllowlist()}
}

// DestinationAllowlist returns allow_destinations parsed (Validate has
// checked them).
func (c Config) DestinationAllowlist() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.AllowDestinations))
	for _, s := range c.AllowDestinations {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
