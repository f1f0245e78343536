package processors

// ErrorClass names why an attempt failed, in a small fixed vocabulary that
// analysts can group by.
type ErrorClass string

// Error classes.
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
