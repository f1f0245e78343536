package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecuritySettingsLoad(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	hash := HashToken("s3cret-token")
	yaml := writeFile(t, `
allow_destinations: [10.1.0.0/16]
tokens:
  - name: acme
    hash: sha256:`+hash+`
    scopes: [ingest]
    tenants: [acme]
`)
	cfg, err := Load(newFlagSet(), []string{"--config", yaml, "--allow-private-destinations"},
		env(map[string]string{"HOOKLINE_SECRET_KEY": key}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AllowPrivateDestinations {
		t.Error("--allow-private-destinations without a value did not turn it on")
	}
	if got := cfg.DestinationAllowlist(); len(got) != 1 || got[0].String() != "10.1.0.0/16" {
		t.Errorf("allowlist = %v", got)
	}
	if len(cfg.Tokens) != 1 || !cfg.Tokens[0].HasScope(ScopeIngest) || cfg.Tokens[0].HasScope(ScopeAdmin) || cfg.Tokens[0].Tenants[0] != "acme" {
		t.Errorf("tokens = %+v", cfg.Tokens)
	}
	keys, err := cfg.SecretKeys()
	if err != nil || len(keys) != 1 {
		t.Fatalf("SecretKeys = %d keys, %v", len(keys), err)
	}

	cfg, err = Load(newFlagSet(), nil, env(map[string]string{"HOOKLINE_TOKENS": hash + ":ingest+admin:a+b:ops," + hash + ":admin"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tokens) != 2 || cfg.Tokens[0].Name != "ops" || len(cfg.Tokens[0].Tenants) != 2 || !cfg.Tokens[1].HasScope(ScopeAdmin) {
		t.Errorf("tokens from env = %+v", cfg.Tokens)
	}

	file := filepath.Join(t.TempDir(), "key")
	other := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	if err := os.WriteFile(file, []byte(other+"\n"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(newFlagSet(), []string{"--secret-key-file", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := cfg.SecretKeys(); err != nil || len(keys) != 2 || string(keys[0]) != strings.Repeat("k", 32) {
		t.Fatalf("SecretKeys from file = %d keys, %v", len(keys), err)
	}
}

// Bad security settings are rejected naming the field, and a bad key is
// never echoed.
func TestSecuritySettingsValidate(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOOKLINE_ALLOW_DESTINATIONS": "10.0.0.0/33"}, "allow_destinations[0]"},
		{map[string]string{"HOOKLINE_ALLOW_PRIVATE_DESTINATIONS": "maybe"}, "invalid boolean"},
		{map[string]string{"HOOKLINE_SECRET_KEY": short}, "secret_key: key 1 decodes to 16 bytes"},
		{map[string]string{"HOOKLINE_SECRET_KEY": short, "HOOKLINE_SECRET_KEY_FILE": "/x"}, "not both"},
		{map[string]string{"HOOKLINE_TOKENS": "abc:ingest"}, "tokens[0]: hash"},
		{map[string]string{"HOOKLINE_TOKENS": HashToken("x") + ":root"}, `tokens[0]: scopes: "root"`},
		{map[string]string{"HOOKLINE_TOKEN_RATE_LIMIT": "-1"}, "token_rate_limit"},
		{map[string]string{"HOOKLINE_TOKEN_BURST": "0"}, "token_burst"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Load(newFlagSet(), nil, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), short) {
				t.Fatalf("error %q contains the key", err)
			}
		})
	}
}
