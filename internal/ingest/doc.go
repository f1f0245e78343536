// Package ingest is the HTTP API in front of the events topic: it accepts
// events one at a time or in batches, deduplicates them by Idempotency-Key or
// client-chosen id, and writes each accepted event to Kafka with
// envelope.Record before answering, so 202 means the event is durably stored.
// It also serves the endpoint admin routes on top of the endpoints registry.
// docs/api.md is the reference for clients.
package ingest
