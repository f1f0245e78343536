package endpoints

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/signature"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustBox(t *testing.T, keys ...[]byte) *SecretBox {
	t.Helper()
	b, err := NewSecretBox(keys)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lockedBuffer collects logs written from the registry's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBoxedRegistry is startRegistry with a secret box (nil: none) and a
// log the test can read.
func startBoxedRegistry(t *testing.T, c *testCluster, box *SecretBox) (*Registry, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	r := NewRegistry(newClient(t, c), testTopic, slog.New(slog.NewTextHandler(logs, nil)))
	if box != nil {
		r.UseSecretBox(box)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("registry stopped with %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return r, logs
}

// rawValues reads every value of the endpoints topic as stored: what
// arrives within 2s. A test that calls it runs in a synctest bubble, where
// those 2s are virtual: they end once nothing is left to read.
func rawValues(t *testing.T, c *testCluster) []string {
	t.Helper()
	cl, err := kgo.NewClient(c.opts(kgo.ConsumeTopics(testTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []string
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func TestSecretBoxRoundTrip(t *testing.T) {
	box := mustBox(t, testKey(1))
	secret, _ := GenerateSecret()
	sealed, err := box.Seal("ep_1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(sealed) || strings.Contains(sealed, strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("sealed value %q is not an opaque encrypted value", sealed)
	}
	if again, _ := box.Seal("ep_1", secret); again == sealed {
		t.Fatal("two seals of one secret are equal: nonce reused")
	}
	if got, err := box.Open("ep_1", sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if got, err := box.Open("ep_1", secret); err != nil || got != secret {
		t.Fatalf("Open of plaintext = %q, %v; want it unchanged", got, err)
	}
	if _, err := box.Open("ep_2", sealed); err == nil {
		t.Fatal("a secret sealed for ep_1 opened as ep_2's")
	}
	tampered := sealed[:len(sealed)-4] + "AAA="
	if _, err := box.Open("ep_1", tampered); err == nil {
		t.Fatal("tampered value opened")
	}
	if _, err := mustBox(t, testKey(2)).Open("ep_1", sealed); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("Open with another key = %v, want ErrNoSecretKey", err)
	}
	var none *SecretBox
	if _, err := none.Open("ep_1", sealed); !errors.Is(err, ErrNoSecretKey) || strings.Contains(err.Error(), sealed) {
		t.Fatalf("Open without a key = %v", err)
	}
	// Key rotation: new key first, old key second, both decrypt.
	rotated := mustBox(t, testKey(2), testKey(1))
	if got, err := rotated.Open("ep_1", sealed); err != nil || got != secret {
		t.Fatalf("Open with the old key second = %q, %v", got, err)
	}
	if resealed, _ := rotated.Seal("ep_1", secret); strings.Split(resealed, ":")[2] != KeyID(testKey(2)) {
		t.Fatalf("rotated box seals with key %s, want the first key", strings.Split(resealed, ":")[2])
	}
}

// The topic holds only ciphertext; a process with the key reads the
// secrets back, a plaintext record from before encryption still reads, and
// a process without the key cannot sign with (or rewrite) what it cannot
// decrypt.
func TestRegistryEncryptsSecretsAtRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newCluster(t)

		plain, _ := startBoxedRegistry(t, c, nil)
		old := testEndpoint(t, "ep_plain")
		if err := plain.Put(ctx, old); err != nil {
			t.Fatal(err)
		}

		box := mustBox(t, testKey(7))
		w, _ := startBoxedRegistry(t, c, box)
		e := testEndpoint(t, "ep_enc")
		e.Rotate(e.Secrets[0], time.Hour, time.Now())
		next, _ := GenerateKey("v1a")
		e.Rotate(next, time.Hour, time.Now())
		if err := w.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		vals := rawValues(t, c)
		if len(vals) != 2 {
			t.Fatalf("%d records, want 2", len(vals))
		}
		for _, s := range append(slices.Clone(e.Secrets), e.RetiringSecrets[0].Secret) {
			if strings.Contains(vals[1], s) {
				t.Fatalf("stored record contains a secret in plaintext: %s", vals[1])
			}
		}
		if !strings.Contains(vals[1], encryptedPrefix) {
			t.Fatalf("stored record has no encrypted secret: %s", vals[1])
		}

		reader, _ := startBoxedRegistry(t, c, mustBox(t, testKey(9), testKey(7)))
		got, ok := reader.Get("ep_enc")
		if !ok || !slices.Equal(got.Secrets, e.Secrets) || got.RetiringSecrets[0].Secret != e.RetiringSecrets[0].Secret {
			t.Fatalf("reader with the key got %+v", got)
		}
		if got, _ := reader.Get("ep_plain"); !slices.Equal(got.Secrets, old.Secrets) {
			t.Fatalf("plaintext record read as %v", got.Secrets)
		}

		keyless, logs := startBoxedRegistry(t, c, nil)
		got, _ = keyless.Get("ep_enc")
		if !IsEncrypted(got.Secrets[0]) {
			t.Fatalf("keyless reader got %v", got.Secrets)
		}
		if !strings.Contains(logs.String(), "endpoint secret not decrypted") {
			t.Fatalf("keyless reader did not warn: %s", logs.String())
		}
		err := keyless.Update(ctx, "ep_enc", func(*Endpoint) error { return nil })
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "encrypted") {
			t.Fatalf("keyless rewrite = %v, want a FieldError about encryption", err)
		}
		if strings.Contains(logs.String(), "whsec_") || strings.Contains(logs.String(), "whsk_") {
			t.Fatalf("logs contain a secret: %s", logs.String())
		}
	})
}

func TestRotation(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a, _ := GenerateSecret()
	b, _ := GenerateSecret()
	c, _ := GenerateKey("v1a")
	e := Endpoint{ID: "ep", URL: "https://example.com", Secrets: []string{a}, Enabled: true}
	e.Rotate(b, 24*time.Hour, now)
	if !slices.Equal(e.Secrets, []string{b}) || len(e.RetiringSecrets) != 1 || !e.RetiringSecrets[0].ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("after rotation: %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := e.SigningSecrets(now.Add(23 * time.Hour)); !slices.Equal(got, []string{b, a}) {
		t.Fatalf("during overlap signs with %d secrets, want new then old", len(got))
	}
	if got := e.SigningSecrets(now.Add(24 * time.Hour)); !slices.Equal(got, []string{b}) {
		t.Fatalf("after overlap signs with %d secrets, want only the new one", len(got))
	}
	// A second rotation after the first overlap drops the expired secret.
	e.Rotate(c, 0, now.Add(25*time.Hour))
	if !slices.Equal(e.Secrets, []string{c}) || e.RetiringSecrets != nil {
		t.Fatalf("rotation without overlap: %+v", e)
	}
	if pk := e.PublicKeys(); len(pk) != 1 || !strings.HasPrefix(pk[0], "whpk_") {
		t.Fatalf("PublicKeys = %v", pk)
	}
	m := e.Masked()
	if !strings.HasPrefix(m.Secrets[0], "whsk_") || !strings.HasSuffix(m.Secrets[0], "…") || len(m.Secrets[0]) > 12 {
		t.Fatalf("masked %q", m.Secrets[0])
	}
}

// However often an endpoint is rotated within the overlap, it never signs
// with more secrets than receivers check; the ones expiring first go.
func TestRotationKeepsSignaturesWithinWhatReceiversCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	first, _ := GenerateSecret()
	e := Endpoint{ID: "ep", URL: "https://example.com", Secrets: []string{first}, Enabled: true}
	var last string
	for i := range 3 * signature.MaxSignatures {
		last, _ = GenerateSecret()
		e.Rotate(last, 24*time.Hour, now.Add(time.Duration(i)*time.Minute))
	}
	at := now.Add(3 * time.Duration(signature.MaxSignatures) * time.Minute)
	got := e.SigningSecrets(at)
	if len(got) != signature.MaxSignatures || got[0] != last {
		t.Fatalf("signs with %d secrets (first %v), want %d starting with the newest", len(got), got[0] == last, signature.MaxSignatures)
	}
	if slices.Contains(got, first) {
		t.Fatal("the oldest retiring secret still signs")
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Records without retiring_secrets (written before rotation existed) decode
// as before, and a reader that predates rotation still gets the current
// secrets from a new record.
func TestRotationRecordCompatibility(t *testing.T) {
	a, _ := GenerateSecret()
	var e Endpoint
	if err := json.Unmarshal([]byte(`{"id":"ep","url":"https://example.com","secrets":["`+a+`"],"enabled":true}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.RetiringSecrets != nil || !slices.Equal(e.SigningSecrets(time.Now()), []string{a}) {
		t.Fatalf("old record: %+v", e)
	}
	b, _ := GenerateSecret()
	e.Rotate(b, time.Hour, time.Now())
	data, _ := json.Marshal(e)
	var before struct {
		Secrets []string `json:"secrets"`
	}
	if err := json.Unmarshal(data, &before); err != nil || !slices.Equal(before.Secrets, []string{b}) {
		t.Fatalf("an older reader sees secrets %v (%v)", before.Secrets, err)
	}
}
