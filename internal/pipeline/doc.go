// Package pipeline is hookline's engine: it runs processor stages on Kafka,
// one consumer group and one transactional producer per stage (a Runner),
// with per-partition scheduling, pausing, commits and graceful shutdown. It
// imports franz-go, backoff and the standard library, nothing of hookline:
// what a stage does, and how the stages of a serve are wired together, is
// the app's business (internal/app).
//
// # How a stage runs
//
// A Runner owns one kgo.GroupTransactSession. A single loop goroutine polls,
// schedules and commits; worker goroutines only run Stage.Process.
//
//   - Polled records join their partition's read-ahead window, in offset
//     order. A scheduler (scheduler.go, pure: no Kafka, no clock) decides
//     which of them may start now, from their due times, their keys and
//     the partition's limits.
//   - A record may be split into lanes (RunnerConfig.Lanes; the delivery
//     stage makes one per endpoint, so a tenant event is one delivery per
//     subscriber; the stage reads its lane with Lane). Each lane is a task
//     of its own, scheduled under the key (lane, record key); the record
//     completes when all its lanes have, and their successors commit
//     together in one transaction, as one record's would: nothing is lost
//     or handed on twice, and every attempt record rides with its routing
//     decision. After an abort or a crash every lane
//     runs again (at-least-once, same webhook-id).
//   - Within a partition, tasks of different keys run concurrently (up to
//     Concurrency); tasks of one key run one after another, in offset order.
//   - A tier record is started only once it is due (its hookline-due-ms
//     header). A record that is not due holds back only its own key: the
//     due records of other keys behind it in the window start at their due
//     time. Due records start earliest due first.
//   - The window is bounded in records (MaxInFlight, DefaultMaxInFlight)
//     and in bytes (MaxInFlightBytes, DefaultMaxInFlightBytes). When it is
//     full (of records not due yet, or running, or completed but not
//     committed), the partition is paused, and the loop's poll timeout ends
//     at the earliest due time in the window; it is resumed once the window
//     is half drained, and on revoke or loss. Nothing sleeps inside the poll
//     loop, and memory stays bounded however many records wait in Kafka.
//   - So a record is late only while the window is full of records due
//     after it: a record beyond the window whose due time is earlier than
//     every one in it (jitter on a long tier, at a high rate) waits for room.
//
// # Commits: completed records, not only the completed prefix
//
// Scheduling out of offset order changes nothing here: records of
// different keys complete out of offset order anyway. Every FlushInterval,
// the loop takes every completed record of every partition, produces their
// successors (next tier, DLQ, attempt records) in one transaction and
// commits, in the same transaction, each partition's watermark (the first
// record not completed) together with a done set: the offsets above the
// watermark that are completed (commit metadata, "hl2:" and base64 of
// varints: the outputs' offsets of the hand-off audit, then the done set's
// ranges, as many as fit Kafka's 4 KiB metadata limit, maxDoneRanges; the
// older "hl1:" done sets are still read). A slow record therefore holds
// back neither the delivery nor the commit of the records of other keys
// behind it; this is the technique of Confluent's Parallel Consumer, made
// transactional.
//
// Whoever owns the partition next (this process after an abort, another
// after a rebalance or a crash) reads the done set with the committed offset
// (OffsetFetch with RequireStable, so a pending transaction is waited out)
// and skips those offsets, so no successor is ever produced twice.
//
// # Torn transactions: the hand-off audit
//
// On Apache Kafka a transaction's records and its offset commit become
// visible together. The embedded broker (kfake) persists a transaction's
// commit markers, partition by partition, before its offset commits, each
// to its own file: a SIGKILL of its process in between leaves successors
// committed whose source offsets are not, and the next owner would hand
// those records on again. A stage configured with RunnerConfig.Outputs (its
// output topics: next tier, DLQ) is audited for that; the app configures
// them on the embedded broker only, since on Apache Kafka the audit would
// find nothing. Every produced record carries its source (HeaderSource,
// "topic/partition/offset"; a record that keeps the headers of the one it
// comes from carries its ancestors' sources too, and its own is the last),
// and the commit metadata also records, per
// output, the offset after the last successor committed from the
// partition. A new owner with records left to process reads each output's
// same-numbered partition from there to its last stable offset; successors
// of records that are neither below the committed offset nor in the done
// set are passed to Stage.Process as its handedOff argument, and the
// delivery stage skips the pairs that moved on. Attempt records are not
// outputs: a visible attempt record does not mean its pair moved on.
//
// GroupTransactSession.End would commit the polled position; the loop
// rewrites the TxnOffsetCommit request (kgo.PreTxnCommitFnContext) to the
// watermark and done set. When End aborts (a rebalance, a fenced producer, a
// failed produce), kgo rewinds to the committed offsets and the loop forgets
// every record it held: they are fetched and processed again. HTTP delivery
// is therefore at-least-once, with the same webhook-id, and the topic chain
// is exactly-once.
//
// # Shutdown
//
// When the context of Run ends, the loop stops fetching, lets the records
// in flight finish for up to RunnerConfig.Grace (DefaultGrace), commits
// what completed and leaves the group. Records still in flight after the
// grace period are abandoned: their context is cancelled, they are not
// committed, and the next owner processes them again. Run returns only
// once every worker goroutine has returned. The package's defaults
// (DefaultConcurrency, DefaultMaxInFlight, DefaultMaxInFlightBytes,
// DefaultGrace, ...) are what config.Default refers to.
package pipeline
