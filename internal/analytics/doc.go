// Package analytics lands every delivery attempt in ClickHouse and answers
// questions about delivery health with plain SQL.
//
// It owns the ClickHouse schema and its migrations (Migrate), the sink that
// consumes the attempts topic and writes one row per attempt in batches
// (Sink), and the analyst query pack embedded from queries/*.sql (Queries,
// RunQuery, Summary). docs/analytics.md documents the columns, rollups,
// retention and what differs between ClickHouse 18.16 and current releases.
//
// Rows are keyed by attempt id in a ReplacingMergeTree, so a batch written
// twice (the sink retries after an ambiguous error, or re-consumes after a
// crash) collapses: counts with FINAL, or uniqExact(attempt_id), are exact.
package analytics
