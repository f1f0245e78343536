// Package pipeline runs processor stages on Kafka: one consumer group and one
// transactional producer per stage (the events stage and each retry tier),
// per-partition scheduling, pausing, commits and graceful shutdown.
//
// # How a stage runs
//
// A Runner owns one kgo.GroupTransactSession. A single loop goroutine polls,
// schedules and commits; worker goroutines only run Stage.Process.
//
//   - Polled records join their partition's in-flight list, in offset order.
//   - Within a partition, records of different keys run concurrently (up to
//     Concurrency); records of one key run one after another, in offset order.
//   - A tier record is started only once it is due (its hookline-due-ms
//     header). While the head of a partition is not due, the partition is
//     paused and the loop's poll timeout ends at the due time; it is resumed
//     then, and on revoke or loss. Nothing sleeps inside the poll loop.
//   - When a partition holds MaxInFlight records, fetching pauses until it
//     drains, so memory stays bounded.
//
// # Commits: completed records, not only the completed prefix
//
// Every FlushInterval, the loop takes every completed record of every
// partition, produces their successors (next tier, DLQ, attempt records) in
// one transaction and commits, in the same transaction, each partition's
// watermark (the first record not completed) together with a done set: the
// offsets above the watermark that are completed (commit metadata, "hl1:"
// and varint ranges, at most maxDoneRanges ranges to fit Kafka's 4 KiB
// metadata limit). A slow record therefore holds back neither the delivery
// nor the commit of the records of other keys behind it; this is the
// technique of Confluent's Parallel Consumer, made transactional.
//
// Whoever owns the partition next (this process after an abort, another
// after a rebalance or a crash) reads the done set with the committed offset
// (OffsetFetch with RequireStable, so a pending transaction is waited out)
// and skips those offsets, so no successor is ever produced twice.
//
// GroupTransactSession.End would commit the polled position; the loop
// rewrites the TxnOffsetCommit request (kgo.PreTxnCommitFnContext) to the
// watermark and done set. When End aborts (a rebalance, a fenced producer, a
// failed produce), kgo rewinds to the committed offsets and the loop forgets
// every record it held: they are fetched and processed again. HTTP delivery
// is therefore at-least-once, with the same webhook-id, and the topic chain
// is exactly-once.
package pipeline
