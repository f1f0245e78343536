package endpoints

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hookline/hookline/signature"
)

// Limits on the fields of an endpoint.
const (
	MaxIDLen        = 128
	MaxTenantLen    = 256
	MaxEventTypeLen = 256
	MaxTimeoutMS    = 300_000
	// MaxHeaders bounds the custom headers of an endpoint, MaxHeaderLen the
	// bytes of each name and each value.
	MaxHeaders   = 32
	MaxHeaderLen = 4096
	// MaxRateLimit bounds rate_limit (requests per second) and
	// MaxMaxInFlight bounds max_in_flight.
	MaxRateLimit   = 100_000
	MaxMaxInFlight = 10_000
	// SecretPrefix starts every Standard Webhooks signing secret.
	SecretPrefix = "whsec_"
	// MinSecretBytes is the shortest decoded secret accepted: HMAC-SHA256 keys
	// shorter than this are guessable.
	MinSecretBytes = 24
)

// FieldError is a validation error that names the offending field, in the
// JSON spelling of the Endpoint ("secrets[1]", "timeout_ms").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidID reports whether id is a well-formed endpoint id: 1 to 128 of
// A-Z a-z 0-9 . _ : -
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Validate checks an endpoint before it is written to the registry. The error
// is a *FieldError naming the field.
func (e Endpoint) Validate() error {
	if !ValidID(e.ID) {
		return &FieldError{"id", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 . _ : -", MaxIDLen)}
	}
	if err := validURL(e.URL); err != nil {
		return &FieldError{"url", err.Error()}
	}
	if len(e.Secrets) == 0 {
		return &FieldError{"secrets", "at least one signing secret is required"}
	}
	if len(e.Secrets) > signature.MaxSignatures {
		return &FieldError{"secrets", fmt.Sprintf("at most %d signing secrets: receivers check no more signatures than that", signature.MaxSignatures)}
	}
	for i, s := range e.Secrets {
		if err := CheckSecret(s); err != nil {
			return &FieldError{fmt.Sprintf("secrets[%d]", i), err.Error()}
		}
	}
	for i, r := range e.RetiringSecrets {
		if err := CheckSecret(r.Secret); err != nil {
			return &FieldError{fmt.Sprintf("retiring_secrets[%d].secret", i), err.Error()}
		}
		if r.ExpiresAt.IsZero() {
			return &FieldError{fmt.Sprintf("retiring_secrets[%d].expires_at", i), "is required"}
		}
	}
	if len(e.Tenant) > MaxTenantLen {
		return &FieldError{"tenant", fmt.Sprintf("is longer than %d bytes", MaxTenantLen)}
	}
	if strings.ContainsFunc(e.Tenant, unicode.IsControl) {
		return &FieldError{"tenant", "must not contain control characters"}
	}
	for i, t := range e.EventTypes {
		field := fmt.Sprintf("event_types[%d]", i)
		switch {
		case strings.TrimSpace(t) == "":
			return &FieldError{field, "is empty"}
		case len(t) > MaxEventTypeLen:
			return &FieldError{field, fmt.Sprintf("is longer than %d bytes", MaxEventTypeLen)}
		case strings.ContainsFunc(t, unicode.IsControl):
			return &FieldError{field, "must not contain control characters"}
		case strings.Contains(strings.TrimSuffix(t, "*"), "*"):
			return &FieldError{field, `"*" is allowed only at the end, as a prefix match`}
		}
	}
	if e.TimeoutMS < 0 || e.TimeoutMS > MaxTimeoutMS {
		return &FieldError{"timeout_ms", fmt.Sprintf("must be 0 (default %s) or 1 to %d", DefaultTimeout, MaxTimeoutMS)}
	}
	switch e.Ordering {
	case "", OrderingBestEffort, OrderingStrict:
	default:
		return &FieldError{"ordering", fmt.Sprintf("must be %q (default) or %q", OrderingBestEffort, OrderingStrict)}
	}
	switch e.OnDeadLetter {
	case "", OnDeadLetterContinue, OnDeadLetterHold:
	default:
		return &FieldError{"on_dead_letter", fmt.Sprintf("must be %q (default) or %q", OnDeadLetterContinue, OnDeadLetterHold)}
	}
	if err := checkHeaders(e.Headers); err != nil {
		return err
	}
	if e.RateLimit < 0 || e.RateLimit > MaxRateLimit {
		return &FieldError{"rate_limit", fmt.Sprintf("must be 0 (no limit) or 1 to %d requests per second", MaxRateLimit)}
	}
	if e.MaxInFlight < 0 || e.MaxInFlight > MaxMaxInFlight {
		return &FieldError{"max_in_flight", fmt.Sprintf("must be 0 (no cap) or 1 to %d", MaxMaxInFlight)}
	}
	if e.DisableAfter != "" {
		if d, err := time.ParseDuration(e.DisableAfter); err != nil || d < 0 {
			return &FieldError{"disable_after", `must be a non-negative Go duration such as "120h" ("0s": never)`}
		}
	}
	return checkClientCert(e.ClientCertPEM, e.ClientKeyPEM)
}

// reservedHeaders are set by hookline on every delivery; hop-by-hop
// headers would break the request's framing.
var reservedHeaders = []string{"content-type", "content-length", "host", "transfer-encoding", "connection"}

// ReservedHeader reports whether a custom header may not be set on an
// endpoint because hookline sets it: webhook-* (the signature headers),
// Content-Type, Content-Length, Host and the hop-by-hop Transfer-Encoding
// and Connection. The API and the CLI both refuse through Validate.
func ReservedHeader(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "webhook-") || slices.Contains(reservedHeaders, n)
}

func checkHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return &FieldError{"headers", fmt.Sprintf("at most %d headers", MaxHeaders)}
	}
	names := slices.Sorted(maps.Keys(h))
	for _, name := range names {
		field := "headers[" + name + "]"
		switch {
		case !validHeaderName(name):
			return &FieldError{field, fmt.Sprintf("header name %q is not an HTTP token of 1 to %d characters", name, MaxHeaderLen)}
		case ReservedHeader(name):
			return &FieldError{field, fmt.Sprintf("header %s is set by hookline and may not be overridden (webhook-*, content-type, content-length, host, transfer-encoding, connection are reserved)", name)}
		case len(h[name]) > MaxHeaderLen:
			return &FieldError{field, fmt.Sprintf("value of header %s is longer than %d bytes", name, MaxHeaderLen)}
		case strings.ContainsFunc(h[name], func(r rune) bool { return r != '\t' && unicode.IsControl(r) }):
			return &FieldError{field, fmt.Sprintf("value of header %s must not contain control characters", name)}
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > MaxHeaderLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func validURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an absolute http or https URL")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("has no host")
	}
	return nil
}

// CheckSecret checks that s is a Standard Webhooks signing secret: "whsec_"
// followed by the standard base64 (padded or not) of at least
// MinSecretBytes bytes (v1), or a "whsk_" ed25519 signing key (v1a). The
// error never contains the secret.
func CheckSecret(s string) error {
	if strings.HasPrefix(s, signature.SigningKeyPrefix) {
		if err := signature.ValidateSecret(s); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), signature.ErrInvalidSecret.Error()+": "))
		}
		return nil
	}
	if strings.HasPrefix(s, encryptedPrefix) {
		return errors.New("is encrypted and this process has no secret_key that decrypts it")
	}
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return fmt.Errorf("must start with %q (v1) or %q (v1a)", SecretPrefix, signature.SigningKeyPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return fmt.Errorf("is not %s followed by standard base64", SecretPrefix)
	}
	if len(key) < MinSecretBytes {
		return fmt.Errorf("decodes to %d bytes, at least %d are required", len(key), MinSecretBytes)
	}
	return nil
}
