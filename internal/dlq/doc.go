// Package dlq owns the way back out of the dead-letter topic: reading it,
// filtering it, replaying records into the events topic or the first retry
// tier, and the audit trail of every replay.
//
// Reading never joins a consumer group: it consumes the DLQ partitions
// directly, read_committed, from their start to the end offsets as of the
// start of the read, streaming, so memory stays flat however deep the DLQ
// is, and nothing a running pipeline does is disturbed.
//
// A replay produces its records transactionally, together with a progress
// record in the audit topic that names, per DLQ partition, the next offset
// to read. A replay interrupted at any instant and run again with the same
// replay id resumes after the last committed progress record, so it sends
// nothing twice; the transactional id is derived from the replay id, so a
// second run of the same replay fences the first.
package dlq
