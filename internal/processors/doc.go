// Package processors holds the stages of the pipeline and the pure decisions
// they make. A stage takes one consumed record and returns the records it
// produces (next tier, DLQ, attempt records); the pipeline package runs stages
// inside Kafka transactions. Decisions (classify an HTTP result, pick the next
// tier, compute a due time, parse Retry-After, encode retry headers) are plain
// functions with no Kafka and no clock.
//
// # What an endpoint receives
//
// Delivery POSTs, for each pair (event, endpoint), a JSON object built from
// the envelope:
//
//	{
//	  "id":        "<event id>",
//	  "type":      "<event type>",
//	  "tenant":    "<tenant>",            // only for events addressed to a tenant
//	  "timestamp": "<event created_at, RFC 3339, UTC>",
//	  "data":      <the event payload, as given>
//	}
//
// with Content-Type application/json, User-Agent hookline/1 and the Standard
// Webhooks headers: webhook-id is the event id, so a receiver can drop a
// repeat of an at-least-once delivery; webhook-timestamp is the time of the
// attempt; webhook-signature holds one v1 signature per active secret of the
// endpoint. The body is the same on every attempt. Redirects are not followed.
//
// # Where a pair goes
//
// 2xx: done. 408, 409, 429, 3xx, 5xx, timeouts, connection errors and attempts
// skipped by an open circuit: the next retry tier, or the DLQ when the tiers
// or MaxAttempts run out. Other 4xx: the DLQ at once. 410: the DLQ, and the
// endpoint is disabled. Tier and DLQ records keep the producer's envelope as
// their value and carry the pair's RetryState in hookline-* headers; a DLQ
// record of a tenant event names its one endpoint in hookline-endpoint.
package processors
