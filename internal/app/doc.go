// Package app is the composition root of `hookline serve`: it builds every
// component of a serve from a config.Config and runs them in one run group.
// The engine it drives (internal/pipeline) knows nothing of it.
//
// # How a serve is composed
//
// Service.Run, in order (service.go, start.go):
//
//  1. Kafka security options (kafkaopts.go), then the ingest API's and the
//     metrics server's listeners (listeners.go): a bind error such as
//     "address already in use" stops the serve before anything started.
//  2. The embedded broker when no brokers are configured (embedded.go; its
//     crash repair in embedded_repair.go), a check of the Kafka credentials,
//     the shared client, topic provisioning (provision.go) and the endpoint
//     registry, with encryption of secrets at rest (secrets.go).
//  3. Then, starting each in the run group as soon as it is built: the
//     registry follower; the metrics (metrics.go) and the DLQ backlog; one
//     runner per stage (stages.go: events and each retry tier; strict.go:
//     the strict stage, whose holds holds.go reads) and the follower of
//     held keys' releases; the stages; the ingest API and the metrics
//     server; the lag monitor (lag.go), the operator webhook and the extras
//     (Options.Extra: the ClickHouse sink of AnalyticsExtras, the outbox
//     relay).
//
// Every stage is wrapped once by Observe (observe.go), which adds the
// metrics and logs every stage shares. The hand-off audit of the engine is
// turned on for the embedded broker only (auditOutputs): only there can a
// crash tear a transaction.
//
// # Run group and shutdown order
//
// Every goroutine of a serve belongs to one golang.org/x/sync/errgroup
// group (rungroup.go). Run blocks until its context ends or any goroutine
// returns an error, or returns at once when starting failed, and then
// stops, within config's shutdown_grace:
//
//  1. the ingest API, so that no event is accepted that could not be
//     handed on;
//  2. the stages, each finishing or abandoning its in-flight records and
//     committing what completed (pipeline.Runner.Run);
//  3. the metrics server, which served the drain;
//  4. the components beside the stages (registry, holds follower, lag
//     monitor, operator webhook, extras, readiness watch).
//
// Run returns only once every goroutine of the group has returned. Then,
// and only then, runners that never started, the DLQ reader, the shared
// Kafka client and last the embedded broker close (its listener and
// connections are kfake's own goroutines, which its Close ends). The error Run returns is
// the one that stopped the serve (or nil when its context ended); errors
// during shutdown are logged.
package app
