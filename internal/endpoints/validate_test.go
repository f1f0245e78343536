package endpoints

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/signature"
)

func TestValidate(t *testing.T) {
	good := Endpoint{
		ID:      "ep_1.a:b-c",
		URL:     "https://hooks.example.com/in?x=1",
		Secrets: []string{SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 24))},
	}
	for _, tc := range []struct {
		name   string
		change func(*Endpoint)
		field  string // "" = valid
	}{
		{"valid", func(*Endpoint) {}, ""},
		{"http url", func(e *Endpoint) { e.URL = "http://localhost:8080/x" }, ""},
		{"unpadded secret", func(e *Endpoint) {
			e.Secrets = []string{SecretPrefix + base64.RawStdEncoding.EncodeToString(make([]byte, 32))}
		}, ""},
		{"timeout max", func(e *Endpoint) { e.TimeoutMS = MaxTimeoutMS }, ""},
		{"prefix filter", func(e *Endpoint) { e.EventTypes = []string{"invoice.*", "user.created"} }, ""},
		{"empty id", func(e *Endpoint) { e.ID = "" }, "id"},
		{"id with space", func(e *Endpoint) { e.ID = "ep 1" }, "id"},
		{"id with slash", func(e *Endpoint) { e.ID = "a/b" }, "id"},
		{"id too long", func(e *Endpoint) { e.ID = strings.Repeat("a", MaxIDLen+1) }, "id"},
		{"no url", func(e *Endpoint) { e.URL = "" }, "url"},
		{"relative url", func(e *Endpoint) { e.URL = "/hooks" }, "url"},
		{"ftp url", func(e *Endpoint) { e.URL = "ftp://example.com/x" }, "url"},
		{"url without host", func(e *Endpoint) { e.URL = "https:///x" }, "url"},
		{"url unparsable", func(e *Endpoint) { e.URL = "https://exa mple.com/%zz" }, "url"},
		{"tenant with a terminal escape", func(e *Endpoint) { e.Tenant = "acme\x1b[2J" }, "tenant"},
		{"event type with a newline", func(e *Endpoint) { e.EventTypes = []string{"a", "b\nc"} }, "event_types[1]"},
		{"unicode tenant", func(e *Endpoint) { e.Tenant = "acmé ✓" }, ""},
		{"no secret", func(e *Endpoint) { e.Secrets = nil }, "secrets"},
		{"more secrets than receivers check", func(e *Endpoint) {
			e.Secrets = slices.Repeat(e.Secrets, signature.MaxSignatures+1)
		}, "secrets"},
		{"secret without prefix", func(e *Endpoint) {
			e.Secrets = append(e.Secrets, base64.StdEncoding.EncodeToString(make([]byte, 32)))
		}, "secrets[1]"},
		{"secret not base64", func(e *Endpoint) { e.Secrets = []string{SecretPrefix + "!!!!"} }, "secrets[0]"},
		{"secret too short", func(e *Endpoint) {
			e.Secrets = []string{SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 23))}
		}, "secrets[0]"},
		{"tenant too long", func(e *Endpoint) { e.Tenant = strings.Repeat("t", MaxTenantLen+1) }, "tenant"},
		{"empty event type", func(e *Endpoint) { e.EventTypes = []string{"a", " "} }, "event_types[1]"},
		{"star inside event type", func(e *Endpoint) { e.EventTypes = []string{"in*voice"} }, "event_types[0]"},
		{"negative timeout", func(e *Endpoint) { e.TimeoutMS = -1 }, "timeout_ms"},
		{"timeout too long", func(e *Endpoint) { e.TimeoutMS = MaxTimeoutMS + 1 }, "timeout_ms"},
		{"strict, hold", func(e *Endpoint) { e.Ordering, e.OnDeadLetter = OrderingStrict, OnDeadLetterHold }, ""},
		{"best effort, continue", func(e *Endpoint) { e.Ordering, e.OnDeadLetter = OrderingBestEffort, OnDeadLetterContinue }, ""},
		{"unknown ordering", func(e *Endpoint) { e.Ordering = "fifo" }, "ordering"},
		{"ordering in capitals", func(e *Endpoint) { e.Ordering = "STRICT" }, "ordering"},
		{"unknown on_dead_letter", func(e *Endpoint) { e.OnDeadLetter = "drop" }, "on_dead_letter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good.clone()
			tc.change(&e)
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want a FieldError for %q", err, tc.field)
			}
			for _, s := range e.Secrets {
				if len(s) > len(SecretPrefix)+4 && strings.Contains(err.Error(), s) {
					t.Fatal("the error message contains the secret")
				}
			}
		})
	}
}

func TestGenerated(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSecret(s); err != nil {
		t.Fatalf("generated secret is invalid: %v", err)
	}
	if key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix)); len(key) != 32 {
		t.Fatalf("generated secret has %d bytes, want 32", len(key))
	}
	s2, _ := GenerateSecret()
	if s == s2 {
		t.Fatal("two generated secrets are equal")
	}

	id := GenerateID()
	if !strings.HasPrefix(id, "ep_") || !ValidID(id) || id == GenerateID() {
		t.Fatalf("GenerateID = %q: want a unique valid id starting ep_", id)
	}
}

func TestMask(t *testing.T) {
	s := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if got, want := Mask(s), "whsec_MfKQ…"; got != want {
		t.Fatalf("Mask = %q, want %q", got, want)
	}
	if got := Mask("whsec_short"); got != "whsec_…" {
		t.Fatalf("Mask of a short secret = %q, want nothing of it shown", got)
	}
	e := Endpoint{Secrets: []string{s}}
	if m := e.Masked(); m.Secrets[0] != "whsec_MfKQ…" || e.Secrets[0] != s {
		t.Fatalf("Masked = %v and changed the original to %v", m.Secrets, e.Secrets)
	}
}
