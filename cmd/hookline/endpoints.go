package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

const endpointsUsage = `Usage: hookline endpoints <add|list|get|update|rotate-secret|reencrypt|delete> [flags] [ID]

Manages endpoints in the endpoints topic, directly through Kafka (--brokers,
or the embedded broker of a running 'hookline serve' at --kafka-listen). Give
it the same secret_key as serve (HOOKLINE_SECRET_KEY or --secret-key-file):
secrets are encrypted in the topic with it.

  add     --url URL [--id ID] [--scheme v1|v1a] [--secret whsec_...|whsk_...] [--tenant T] [--event-types a,b.*] [--timeout 15s]
          [--header 'Name: value']... [--rate-limit N] [--max-in-flight-requests N] [--disable-after 120h]
          [--ordering strict] [--on-dead-letter continue|hold]
          prints the endpoint with its secret in full, the only time it is shown;
          v1 signs with HMAC (whsec_), v1a with ed25519 (whsk_; receivers get the whpk_ public key)
  list    one line per endpoint, secrets masked
  get     ID
          [--client-cert FILE --client-key FILE]  a client certificate for an endpoint that requires mutual TLS
  update  ID [--url URL] [--tenant T] [--event-types ...] [--timeout D] [--enabled=true|false] [--add-secret whsec_...]
          [--header 'Name: value']... ('Name:' removes it) [--rate-limit N] [--max-in-flight-requests N] [--disable-after D]
          [--ordering M] [--on-dead-letter W]
          --enabled=true re-enables an endpoint that was disabled (HTTP 410, disable_after)
          [--client-cert FILE --client-key FILE]  replaces the client certificate; --client-cert= --client-key= removes it
  rotate-secret ID [--overlap 24h] [--scheme v1|v1a] [--secret ...]
          makes a new secret current; the old ones keep signing for --overlap, then expire by themselves
  reencrypt
          rewrites every endpoint so its secrets are encrypted with the first secret_key (after a key rotation)
  delete  ID
`

func runEndpoints(ctx context.Context, args []string) error {
	sub, args, fs, err := subcommand("endpoints", endpointsUsage, args)
	if err != nil {
		return err
	}
	var (
		id         = new(string)
		url        = new(string)
		secret     = new(string)
		tenant     = new(string)
		eventTypes = new(string)
		timeout    = new(time.Duration)
		enabled    = new(bool)
		addSecret  = new(string)
		scheme     = new(string)
		overlap    = new(time.Duration)
		clientCert = new(string)
		clientKey  = new(string)
		ordering   = new(string)
		onDead     = new(string)
		headers    = headerFlags{}
		rateLimit  = new(int)
		maxFlight  = new(int)
		disableAft = new(string)
		asJSON     = fs.Bool("json", false, "print JSON")
	)
	switch sub {
	case "add":
		fs.StringVar(id, "id", "", "endpoint `id` (default: generated)")
		fallthrough
	case "update":
		fs.StringVar(url, "url", "", "destination `URL` (http or https)")
		fs.StringVar(tenant, "tenant", "", "`tenant` the endpoint belongs to (for fan-out events)")
		fs.StringVar(eventTypes, "event-types", "", "comma-separated event `types` to receive; a trailing * matches a prefix; empty: all")
		fs.DurationVar(timeout, "timeout", 0, "per-request `timeout` (default: the server's endpoint_timeout)")
		fs.StringVar(ordering, "ordering", "", "`mode` best_effort (default) or strict: strict keeps each ordering key's events in order also across failures")
		fs.StringVar(onDead, "on-dead-letter", "", "`what` a strict endpoint does with the events behind a dead-lettered one: continue (default), or hold until hookline dlq replay or skip")
		fs.StringVar(clientCert, "client-cert", "", "PEM `file` of a client certificate (and chain) for an endpoint that requires mutual TLS; with --client-key")
		fs.StringVar(clientKey, "client-key", "", "PEM `file` of the client certificate's private key, encrypted at rest with secret_key")
		fs.Var(headers, "header", "custom `header` 'Name: value' sent with every delivery; repeatable; webhook-*, content-type, content-length and host are refused")
		fs.IntVar(rateLimit, "rate-limit", 0, "requests per second to the endpoint, per serve process; 0: no limit")
		fs.IntVar(maxFlight, "max-in-flight-requests", 0, "concurrent requests to the endpoint, per serve process; 0: no cap")
		fs.StringVar(disableAft, "disable-after", "", "`duration` of failures without a success after which the endpoint is disabled; 0s: never; empty: the server's disable_after")
	case "rotate-secret":
		fs.StringVar(scheme, "scheme", "", "signature scheme of the new secret, v1 (HMAC) or v1a (ed25519); default: that of the current secret")
		fs.StringVar(secret, "secret", "", "the new signing `secret` (default: generated)")
		fs.DurationVar(overlap, "overlap", 24*time.Hour, "how long the replaced secrets keep signing, so receivers can switch")
	case "list", "get", "delete", "reencrypt":
	default:
		fmt.Fprint(os.Stderr, endpointsUsage)
		return fmt.Errorf("unknown endpoints subcommand %q", sub)
	}
	switch sub {
	case "add":
		fs.StringVar(secret, "secret", "", "signing `secret` whsec_... or whsk_... (default: generated)")
		fs.StringVar(scheme, "scheme", "v1", "signature scheme of a generated secret: v1 (HMAC, whsec_) or v1a (ed25519, whsk_)")
	case "update":
		fs.BoolVar(enabled, "enabled", true, "enable or disable the endpoint")
		fs.StringVar(addSecret, "add-secret", "", "add a signing `secret`; deliveries carry one signature per secret")
	}
	// Accept the ID before the flags too: "update ID --url ..." reads naturally.
	var lead []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		lead, args = args[:1], args[1:]
	}
	cfg, err := config.Load(fs, args, nil)
	if err != nil {
		return err
	}
	positional := append(lead, fs.Args()...)
	set := func(name string) bool {
		found := false
		fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
		return found
	}
	argID := func() (string, error) {
		if len(positional) != 1 {
			return "", fmt.Errorf("endpoints %s: want exactly one endpoint ID argument, got %d", sub, len(positional))
		}
		return positional[0], nil
	}

	// Read the certificate files before connecting: a wrong path fails fast.
	var certPEM, keyPEM string
	if set("client-cert") || set("client-key") {
		if certPEM, keyPEM, err = readClientCert(*clientCert, *clientKey); err != nil {
			return err
		}
	}

	// Refuse reserved headers before connecting; Validate refuses them too.
	for name := range headers {
		if endpoints.ReservedHeader(name) {
			return fmt.Errorf("--header %s: the header is set by hookline and may not be overridden (webhook-*, content-type, content-length, host, transfer-encoding, connection are reserved)", name)
		}
	}

	cl, _, topicSet, err := connect(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	reg := endpoints.NewRegistry(cl, topicSet.Endpoints, slog.New(slog.NewTextHandler(io.Discard, nil)))
	keys, err := cfg.SecretKeys()
	if err != nil {
		return err
	}
	if keys != nil {
		box, err := endpoints.NewSecretBox(keys)
		if err != nil {
			return err
		}
		reg.UseSecretBox(box)
	} else if sub == "add" || sub == "update" || sub == "rotate-secret" || sub == "reencrypt" {
		fmt.Fprintln(os.Stderr, "warning: no secret_key (HOOKLINE_SECRET_KEY or --secret-key-file): secrets are stored in plaintext in the endpoints topic")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go reg.Run(runCtx)
	waitCtx, cancelWait := context.WithTimeout(ctx, 15*time.Second)
	defer cancelWait()
	if err := reg.WaitReady(waitCtx); err != nil {
		return fmt.Errorf("read endpoints topic %s (is Kafka reachable? --brokers, or a running serve's --kafka-listen): %w", topicSet.Endpoints, app.KafkaAuthError(err))
	}

	switch sub {
	case "add":
		if len(positional) != 0 {
			return fmt.Errorf("endpoints add: unexpected argument %q (give the id with --id)", positional[0])
		}
		e := endpoints.Endpoint{ID: *id, URL: *url, Tenant: *tenant, Enabled: true, TimeoutMS: int(*timeout / time.Millisecond),
			ClientCertPEM: certPEM, ClientKeyPEM: keyPEM,
			RateLimit: *rateLimit, MaxInFlight: *maxFlight, DisableAfter: *disableAft,
			Ordering: *ordering, OnDeadLetter: *onDead}
		for name, value := range headers {
			if value != "" {
				if e.Headers == nil {
					e.Headers = make(map[string]string)
				}
				e.Headers[name] = value
			}
		}
		if e.ID == "" {
			e.ID = endpoints.GenerateID()
		}
		if *eventTypes != "" {
			e.EventTypes = splitComma(*eventTypes)
		}
		if *secret == "" {
			if *secret, err = endpoints.GenerateKey(*scheme); err != nil {
				return err
			}
		}
		e.Secrets = []string{*secret}
		if err := cfg.Destinations().CheckURL(e.URL); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
		if err := reg.Create(ctx, e); err != nil {
			return err
		}
		got, _ := reg.Get(e.ID)
		return printEndpoints(*asJSON, false, got)
	case "list":
		return printEndpoints(*asJSON, true, reg.List()...)
	case "get":
		id, err := argID()
		if err != nil {
			return err
		}
		e, ok := reg.Get(id)
		if !ok {
			return fmt.Errorf("endpoint %s: %w", id, endpoints.ErrNotFound)
		}
		return printEndpoints(true, true, e)
	case "update":
		id, err := argID()
		if err != nil {
			return err
		}
		if set("url") {
			if err := cfg.Destinations().CheckURL(*url); err != nil {
				return fmt.Errorf("--url: %w", err)
			}
		}
		err = reg.Update(ctx, id, func(e *endpoints.Endpoint) error {
			if set("url") {
				e.URL = *url
			}
			if set("tenant") {
				e.Tenant = *tenant
			}
			if set("event-types") {
				e.EventTypes = splitComma(*eventTypes)
			}
			if set("timeout") {
				e.TimeoutMS = int(*timeout / time.Millisecond)
			}
			if set("ordering") {
				e.Ordering = *ordering
			}
			if set("on-dead-letter") {
				e.OnDeadLetter = *onDead
			}
			if set("enabled") {
				e.Enabled = *enabled
				if *enabled {
					e.DisabledReason = ""
				}
			}
			for name, value := range headers {
				if value == "" {
					delete(e.Headers, name)
					continue
				}
				if e.Headers == nil {
					e.Headers = make(map[string]string)
				}
				e.Headers[name] = value
			}
			if set("rate-limit") {
				e.RateLimit = *rateLimit
			}
			if set("max-in-flight-requests") {
				e.MaxInFlight = *maxFlight
			}
			if set("disable-after") {
				e.DisableAfter = *disableAft
			}
			if set("add-secret") {
				e.Secrets = append(e.Secrets, *addSecret)
			}
			if set("client-cert") || set("client-key") {
				e.ClientCertPEM, e.ClientKeyPEM = certPEM, keyPEM
			}
			return nil
		})
		if err != nil {
			return err
		}
		e, _ := reg.Get(id)
		return printEndpoints(true, true, e)
	case "rotate-secret":
		id, err := argID()
		if err != nil {
			return err
		}
		if *overlap < 0 {
			return errors.New("--overlap must not be negative")
		}
		now := time.Now().UTC()
		var fresh string
		err = reg.Update(ctx, id, func(e *endpoints.Endpoint) error {
			if fresh = *secret; fresh != "" {
				e.Rotate(fresh, *overlap, now)
				return nil
			}
			var err error
			fresh, err = e.RotateGenerated(*scheme, *overlap, now)
			return err
		})
		if err != nil {
			return err
		}
		e, _ := reg.Get(id)
		return printRotation(*asJSON, e, fresh, now.Add(*overlap))
	case "reencrypt":
		if keys == nil {
			return errors.New("reencrypt: no secret_key configured (HOOKLINE_SECRET_KEY or --secret-key-file)")
		}
		n := 0
		for _, e := range reg.List() {
			if err := reg.Update(ctx, e.ID, func(*endpoints.Endpoint) error { return nil }); err != nil {
				return fmt.Errorf("reencrypt endpoint %s: %w", e.ID, err)
			}
			n++
		}
		fmt.Printf("rewrote %d endpoints with secret key %s\n", n, endpoints.KeyID(keys[0]))
		return nil
	default: // delete
		id, err := argID()
		if err != nil {
			return err
		}
		if err := reg.Delete(ctx, id); err != nil {
			return err
		}
		fmt.Printf("deleted endpoint %s\n", id)
		return nil
	}
}

// readClientCert reads --client-cert and --client-key: both files, or both
// empty to remove the endpoint's client certificate.
func readClientCert(certFile, keyFile string) (certPEM, keyPEM string, err error) {
	switch {
	case certFile == "" && keyFile == "":
		return "", "", nil
	case certFile == "" || keyFile == "":
		return "", "", errors.New("--client-cert and --client-key go together (both empty removes the client certificate)")
	}
	c, err := os.ReadFile(certFile)
	if err != nil {
		return "", "", fmt.Errorf("--client-cert: %w", err)
	}
	k, err := os.ReadFile(keyFile)
	if err != nil {
		return "", "", fmt.Errorf("--client-key: %w", err)
	}
	return string(c), string(k), nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// printRotation shows the new secret once, in full, with its public key for
// a v1a key.
func printRotation(asJSON bool, e endpoints.Endpoint, fresh string, until time.Time) error {
	out := struct {
		ID            string    `json:"id"`
		Secret        string    `json:"secret"`
		PublicKey     string    `json:"public_key,omitempty"`
		RetiringUntil time.Time `json:"retiring_until,omitzero"`
	}{ID: e.ID, Secret: fresh}
	if signature.Scheme(fresh) == signature.SchemeV1a {
		out.PublicKey, _ = signature.PublicKey(fresh)
	}
	if len(e.RetiringSecrets) > 0 {
		out.RetiringUntil = until
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	fmt.Printf("endpoint %s: new secret (shown only now): %s\n", e.ID, out.Secret)
	if out.PublicKey != "" {
		fmt.Printf("public key for its receivers: %s\n", out.PublicKey)
	}
	if len(e.RetiringSecrets) > 0 {
		fmt.Printf("the previous secret(s) keep signing until %s, then expire\n", until.Format(time.RFC3339))
	} else {
		fmt.Println("the previous secret(s) stopped signing now")
	}
	return nil
}

// endpointView is an endpoint as printed: with the public keys of its v1a
// signing keys, which its receivers need and which are not secret.
type endpointView struct {
	endpoints.Endpoint
	PublicKeys []string `json:"public_keys,omitempty"`
	// ClientCertSHA256 is the fingerprint of the client certificate.
	ClientCertSHA256 string `json:"client_cert_sha256,omitempty"`
}

func printEndpoints(asJSON, mask bool, eps ...endpoints.Endpoint) error {
	views := make([]endpointView, len(eps))
	for i, e := range eps {
		views[i].PublicKeys = e.PublicKeys()
		views[i].ClientCertSHA256 = e.ClientCertSHA256()
		if mask {
			e = e.Masked()
		}
		// The operator gave the key; no output needs to show it again.
		e.ClientKeyPEM = endpoints.MaskKey(e.ClientKeyPEM)
		views[i].Endpoint = e
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if len(views) == 1 {
			return enc.Encode(views[0])
		}
		return enc.Encode(views)
	}
	return writeEndpointsTable(os.Stdout, views)
}

// writeEndpointsTable prints endpoints as a table, every field escaped
// for the terminal.
func writeEndpointsTable(w io.Writer, views []endpointView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tTENANT\tEVENT TYPES\tENABLED\tSECRETS\tCLIENT CERT")
	for _, v := range views {
		secrets := strings.Join(v.Secrets, " ")
		if n := len(v.RetiringSecrets); n > 0 {
			secrets += fmt.Sprintf(" (+%d retiring)", n)
		}
		cert := "-"
		if v.ClientCertSHA256 != "" {
			cert = "sha256:" + v.ClientCertSHA256[:16] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", printable(v.ID), printable(v.URL), printable(v.Tenant), printable(strings.Join(v.EventTypes, ",")), v.Enabled, printable(secrets), cert)
	}
	return tw.Flush()
}

// headerFlags collects repeated --header 'Name: value' flags; an empty
// value (--header 'Name:') removes the header on update.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	h[name] = strings.TrimSpace(value)
	return nil
}
