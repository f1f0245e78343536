package main

import (
	"context"
	"flag"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// endpointsCommand is `hookline endpoints`: its verbs, their flags and what
// each runs (endpoints_verbs.go).
var endpointsCommand = verbs[endpointFlags]{
	name: "endpoints",
	about: `Manages endpoints in the endpoints topic, directly through Kafka (--brokers,
or the embedded broker of a running 'hookline serve' at --kafka-listen). Give
it the same secret_key as serve (HOOKLINE_SECRET_KEY or --secret-key-file):
secrets are encrypted in the topic with it.`,
	leadArg: true,
	verbs: []verb[endpointFlags]{
		{name: "add", summary: "create an endpoint; prints it with its secret in full, the only time it is shown",
			help: "v1 signs with HMAC (whsec_), v1a with ed25519 (whsk_; receivers get the whpk_ public key).",
			flags: func(fs *flag.FlagSet, o *endpointFlags) {
				fs.StringVar(&o.id, "id", "", "endpoint `id` (default: generated)")
				o.registerFields(fs)
				fs.StringVar(&o.secret, "secret", "", "signing `secret` whsec_... or whsk_... (default: generated)")
				fs.StringVar(&o.scheme, "scheme", "v1", "signature scheme of a generated secret: v1 (HMAC, whsec_) or v1a (ed25519, whsk_)")
			}, run: endpointsAdd},
		{name: "list", summary: "one line per endpoint, secrets masked", flags: jsonFlag, run: endpointsList},
		{name: "get", args: "ID", summary: "one endpoint as JSON, secrets masked", flags: jsonFlag, run: endpointsGet},
		{name: "update", args: "ID", summary: "change an endpoint's settings; --enabled=false disables it, --enabled=true re-enables it",
			help: `--header 'Name:' removes a header; --client-cert= --client-key= remove the client certificate.
--enabled=true re-enables an endpoint that was disabled (HTTP 410, disable_after).`,
			flags: func(fs *flag.FlagSet, o *endpointFlags) {
				o.registerFields(fs)
				fs.BoolVar(&o.enabled, "enabled", true, "enable or disable the endpoint")
				fs.StringVar(&o.disabledReason, "disabled-reason", "", "why the endpoint is disabled, with --enabled=false (default: disabled through the CLI)")
				fs.StringVar(&o.addSecret, "add-secret", "", "add a signing `secret`; deliveries carry one signature per secret")
			}, run: endpointsUpdate},
		{name: "rotate-secret", args: "ID", summary: "make a new secret current; the old ones keep signing for --overlap, then expire by themselves",
			flags: func(fs *flag.FlagSet, o *endpointFlags) {
				jsonFlag(fs, o)
				fs.StringVar(&o.scheme, "scheme", "", "signature scheme of the new secret, v1 (HMAC) or v1a (ed25519); default: that of the current secret")
				fs.StringVar(&o.secret, "secret", "", "the new signing `secret` (default: generated)")
				fs.DurationVar(&o.overlap, "overlap", endpoints.DefaultRotationOverlap, "how long the replaced secrets keep signing, so receivers can switch")
			}, run: endpointsRotate},
		{name: "reencrypt", summary: "rewrite every endpoint so its secrets are encrypted with the first secret_key (after a key rotation)",
			flags: jsonFlag, run: endpointsReencrypt},
		{name: "delete", args: "ID", summary: "delete an endpoint", flags: jsonFlag, run: endpointsDelete},
	},
}

func runEndpoints(ctx context.Context, args []string) error {
	return endpointsCommand.run(ctx, args)
}

// endpointFlags are the values of the endpoints verbs' flags.
type endpointFlags struct {
	asJSON                                       bool
	id, url, secret, tenant, eventTypes, scheme  string
	addSecret, clientCert, clientKey, disableAft string
	ordering, onDeadLetter, disabledReason       string
	timeout, overlap                             time.Duration
	enabled                                      bool
	headers                                      headerFlags
	rateLimit, maxInFlight                       int
}

func jsonFlag(fs *flag.FlagSet, o *endpointFlags) {
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
}

// registerFields registers the flags of the settings add and update share.
func (o *endpointFlags) registerFields(fs *flag.FlagSet) {
	jsonFlag(fs, o)
	o.headers = headerFlags{}
	fs.StringVar(&o.url, "url", "", "destination `URL` (http or https)")
	fs.StringVar(&o.tenant, "tenant", "", "`tenant` the endpoint belongs to (for fan-out events)")
	fs.StringVar(&o.eventTypes, "event-types", "", "comma-separated event `types` to receive; a trailing * matches a prefix; empty: all")
	fs.DurationVar(&o.timeout, "timeout", 0, "per-request `timeout` (default: the server's endpoint_timeout)")
	fs.StringVar(&o.ordering, "ordering", "", "`mode` best_effort (default) or strict: strict keeps each ordering key's events in order also across failures")
	fs.StringVar(&o.onDeadLetter, "on-dead-letter", "", "`what` a strict endpoint does with the events behind a dead-lettered one: continue (default), or hold until hookline dlq replay or skip")
	fs.StringVar(&o.clientCert, "client-cert", "", "PEM `file` of a client certificate (and chain) for an endpoint that requires mutual TLS; with --client-key")
	fs.StringVar(&o.clientKey, "client-key", "", "PEM `file` of the client certificate's private key, encrypted at rest with secret_key")
	fs.Var(o.headers, "header", "custom `header` 'Name: value' sent with every delivery; repeatable; webhook-*, content-type, content-length and host are refused")
	fs.IntVar(&o.rateLimit, "rate-limit", 0, "requests per second to the endpoint, per serve process; 0: no limit")
	fs.IntVar(&o.maxInFlight, "max-in-flight-requests", 0, "concurrent requests to the endpoint, per serve process; 0: no cap")
	fs.StringVar(&o.disableAft, "disable-after", "", "`duration` of failures without a success after which the endpoint is disabled; 0s: never; empty: the server's disable_after")
}
