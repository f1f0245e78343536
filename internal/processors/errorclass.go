package processors

import "slices"

// ErrorClass names why an attempt failed, in a small fixed vocabulary that
// analysts can group by.
type ErrorClass string

// Error classes. ErrorClasses lists every one but ClassNone, with what it
// means.
const (
	ClassNone             ErrorClass = ""
	ClassHTTP3xx          ErrorClass = "http_3xx"
	ClassHTTP4xx          ErrorClass = "http_4xx"
	ClassHTTP408          ErrorClass = "http_408"
	ClassHTTP409          ErrorClass = "http_409"
	ClassHTTP410          ErrorClass = "http_410"
	ClassHTTP429          ErrorClass = "http_429"
	ClassHTTP5xx          ErrorClass = "http_5xx"
	ClassTimeout          ErrorClass = "timeout"
	ClassConnection       ErrorClass = "connection"
	ClassCircuitOpen      ErrorClass = "circuit_open"
	ClassEndpointDisabled ErrorClass = "endpoint_disabled"
	ClassEndpointMissing  ErrorClass = "endpoint_missing"
	ClassMalformed        ErrorClass = "malformed_record"
	ClassNoSecret         ErrorClass = "no_secret"
	// ClassDestinationRefused: the endpoint's address is loopback, private,
	// link-local or otherwise refused by the destination policy.
	ClassDestinationRefused ErrorClass = "destination_refused"
	// ClassClientCert: the endpoint's client certificate or key cannot be
	// used (a key encrypted with a secret_key this process does not have).
	ClassClientCert ErrorClass = "client_cert"
)

// ClassInfo is an error class and what it means, in one line.
type ClassInfo struct {
	Class   ErrorClass
	Meaning string
}

// ErrorClasses is every error class the pipeline writes, in the order the
// docs list them. It is the one list that the DLQ filter accepts and that
// a test holds docs/attempts.md and docs/analytics.md to: a new class goes
// here, with its meaning.
var ErrorClasses = []ClassInfo{
	{ClassHTTP3xx, "the endpoint answered a redirect, which is not followed (retried)"},
	{ClassHTTP4xx, "the endpoint answered 4xx other than 408, 409, 410 and 429 (dead-lettered)"},
	{ClassHTTP408, "the endpoint answered 408 Request Timeout (retried)"},
	{ClassHTTP409, "the endpoint answered 409 Conflict, as an idempotent receiver does while it holds the same webhook-id (retried)"},
	{ClassHTTP410, "the endpoint answered 410 Gone (dead-lettered, and the endpoint is disabled)"},
	{ClassHTTP429, "the endpoint answered 429 Too Many Requests (retried, after its Retry-After)"},
	{ClassHTTP5xx, "the endpoint answered 5xx, or a status outside 100-599 (retried)"},
	{ClassTimeout, "no answer within the endpoint's timeout (retried)"},
	{ClassConnection, "no response: DNS, connect or TLS failed (retried), or the request could not be built (dead-lettered)"},
	{ClassCircuitOpen, "skipped: the endpoint's circuit breaker is open (retried)"},
	{ClassEndpointDisabled, "skipped: the endpoint is disabled (dead-lettered)"},
	{ClassEndpointMissing, "skipped: the endpoint does not exist (dead-lettered)"},
	{ClassMalformed, "the record is not a valid envelope (dead-lettered with no attempt record), or its payload cannot be sent (a skipped attempt, dead-lettered)"},
	{ClassNoSecret, "skipped: the endpoint has no usable signing secret, and nothing is sent unsigned (dead-lettered)"},
	{ClassDestinationRefused, "the endpoint's address is refused by the destination policy: loopback, private, link-local (dead-lettered)"},
	{ClassClientCert, "skipped: the endpoint's client certificate or key cannot be used (dead-lettered)"},
}

// KnownClass reports whether c is one of ErrorClasses.
func KnownClass(c ErrorClass) bool {
	return slices.ContainsFunc(ErrorClasses, func(i ClassInfo) bool { return i.Class == c })
}
