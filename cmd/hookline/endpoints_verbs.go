package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// The verbs of `hookline endpoints`. The rules they apply (a generated
// secret, rotation, enabling and disabling with a reason) are the
// endpoints package's, which the HTTP API calls too.

// cliDisabledReason is recorded when an endpoint is disabled through the
// CLI without --disabled-reason.
const cliDisabledReason = "disabled through the CLI"

// oneID returns the single endpoint ID argument.
func oneID(in invocation) (string, error) {
	if len(in.args) != 1 {
		return "", fmt.Errorf("endpoints %s: want exactly one endpoint ID argument, got %d", in.verb, len(in.args))
	}
	return in.args[0], nil
}

// checkEndpointInput reads the client certificate files and refuses
// reserved headers, before connecting: a wrong path or header fails fast.
func checkEndpointInput(in invocation, o *endpointFlags) (certPEM, keyPEM string, err error) {
	if in.given("client-cert") || in.given("client-key") {
		if certPEM, keyPEM, err = readClientCert(o.clientCert, o.clientKey); err != nil {
			return "", "", err
		}
	}
	// Validate refuses them too.
	for name := range o.headers {
		if endpoints.ReservedHeader(name) {
			return "", "", fmt.Errorf("--header %s: the header is set by hookline and may not be overridden (webhook-*, content-type, content-length, host, transfer-encoding, connection are reserved)", name)
		}
	}
	return certPEM, keyPEM, nil
}

func endpointsAdd(ctx context.Context, in invocation, o *endpointFlags) error {
	certPEM, keyPEM, err := checkEndpointInput(in, o)
	if err != nil {
		return err
	}
	if len(in.args) != 0 {
		return fmt.Errorf("endpoints add: unexpected argument %q (give the id with --id)", in.args[0])
	}
	reg, _, closeReg, err := openRegistry(ctx, in.cfg, true)
	if err != nil {
		return err
	}
	defer closeReg()
	e := endpoints.Endpoint{ID: o.id, URL: o.url, Tenant: o.tenant, TimeoutMS: int(o.timeout / time.Millisecond),
		ClientCertPEM: certPEM, ClientKeyPEM: keyPEM,
		RateLimit: o.rateLimit, MaxInFlight: o.maxInFlight, DisableAfter: o.disableAft,
		Ordering: o.ordering, OnDeadLetter: o.onDeadLetter}
	for name, value := range o.headers {
		if value != "" {
			if e.Headers == nil {
				e.Headers = make(map[string]string)
			}
			e.Headers[name] = value
		}
	}
	if o.eventTypes != "" {
		e.EventTypes = splitComma(o.eventTypes)
	}
	if o.secret != "" {
		e.Secrets = []string{o.secret}
	}
	if err := in.cfg.Destinations().CheckURL(e.URL); err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	created, err := endpoints.Create(ctx, reg, e, o.scheme)
	if err != nil {
		return err
	}
	return printEndpoints(o.asJSON, false, created)
}

func endpointsList(ctx context.Context, in invocation, o *endpointFlags) error {
	reg, _, closeReg, err := openRegistry(ctx, in.cfg, false)
	if err != nil {
		return err
	}
	defer closeReg()
	return printEndpoints(o.asJSON, true, reg.List()...)
}

// openForID is the start of a verb on the one endpoint its argument names:
// the id, and the registry, opened for a verb that stores no secret.
func openForID(ctx context.Context, in invocation) (string, *endpoints.Registry, func(), error) {
	id, err := oneID(in)
	if err != nil {
		return "", nil, nil, err
	}
	reg, _, closeReg, err := openRegistry(ctx, in.cfg, false)
	if err != nil {
		return "", nil, nil, err
	}
	return id, reg, closeReg, nil
}

func endpointsGet(ctx context.Context, in invocation, _ *endpointFlags) error {
	id, reg, closeReg, err := openForID(ctx, in)
	if err != nil {
		return err
	}
	defer closeReg()
	e, ok := reg.Get(id)
	if !ok {
		return fmt.Errorf("endpoint %s: %w", id, endpoints.ErrNotFound)
	}
	return printEndpoints(true, true, e)
}

func endpointsUpdate(ctx context.Context, in invocation, o *endpointFlags) error {
	certPEM, keyPEM, err := checkEndpointInput(in, o)
	if err != nil {
		return err
	}
	id, err := oneID(in)
	if err != nil {
		return err
	}
	if in.given("disabled-reason") && (!in.given("enabled") || o.enabled) {
		return errors.New("--disabled-reason: goes with --enabled=false")
	}
	if in.given("url") {
		if err := in.cfg.Destinations().CheckURL(o.url); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
	}
	reg, _, closeReg, err := openRegistry(ctx, in.cfg, true)
	if err != nil {
		return err
	}
	defer closeReg()
	err = reg.Update(ctx, id, func(e *endpoints.Endpoint) error {
		if in.given("url") {
			e.URL = o.url
		}
		if in.given("tenant") {
			e.Tenant = o.tenant
		}
		if in.given("event-types") {
			e.EventTypes = splitComma(o.eventTypes)
		}
		if in.given("timeout") {
			e.TimeoutMS = int(o.timeout / time.Millisecond)
		}
		if in.given("ordering") {
			e.Ordering = o.ordering
		}
		if in.given("on-dead-letter") {
			e.OnDeadLetter = o.onDeadLetter
		}
		switch {
		case !in.given("enabled"):
		case o.enabled:
			e.Enable()
		case o.disabledReason != "":
			e.Disable(o.disabledReason)
		default:
			e.Disable(cliDisabledReason)
		}
		for name, value := range o.headers {
			if value == "" {
				delete(e.Headers, name)
				continue
			}
			if e.Headers == nil {
				e.Headers = make(map[string]string)
			}
			e.Headers[name] = value
		}
		if in.given("rate-limit") {
			e.RateLimit = o.rateLimit
		}
		if in.given("max-in-flight-requests") {
			e.MaxInFlight = o.maxInFlight
		}
		if in.given("disable-after") {
			e.DisableAfter = o.disableAft
		}
		if in.given("add-secret") {
			e.Secrets = append(e.Secrets, o.addSecret)
		}
		if in.given("client-cert") || in.given("client-key") {
			e.ClientCertPEM, e.ClientKeyPEM = certPEM, keyPEM
		}
		return nil
	})
	if err != nil {
		return err
	}
	e, _ := reg.Get(id)
	return printEndpoints(true, true, e)
}

func endpointsRotate(ctx context.Context, in invocation, o *endpointFlags) error {
	id, err := oneID(in)
	if err != nil {
		return err
	}
	if o.overlap < 0 {
		return errors.New("--overlap must not be negative")
	}
	reg, _, closeReg, err := openRegistry(ctx, in.cfg, true)
	if err != nil {
		return err
	}
	defer closeReg()
	now := time.Now().UTC()
	e, fresh, err := endpoints.RotateSecret(ctx, reg, id, o.secret, o.scheme, o.overlap, now)
	if err != nil {
		return err
	}
	return printRotation(o.asJSON, e, fresh, now.Add(o.overlap))
}

func endpointsReencrypt(ctx context.Context, in invocation, _ *endpointFlags) error {
	reg, keys, closeReg, err := openRegistry(ctx, in.cfg, true)
	if err != nil {
		return err
	}
	defer closeReg()
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
}

func endpointsDelete(ctx context.Context, in invocation, _ *endpointFlags) error {
	id, reg, closeReg, err := openForID(ctx, in)
	if err != nil {
		return err
	}
	defer closeReg()
	if err := reg.Delete(ctx, id); err != nil {
		return err
	}
	fmt.Printf("deleted endpoint %s\n", id)
	return nil
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
