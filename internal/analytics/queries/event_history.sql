-- title: Attempt history of one event
-- answers: Every attempt of one event, per endpoint in attempt order: the
--   tier that made it, its outcome, whether it was skipped (no request
--   sent), the HTTP status, error class and error, latency in milliseconds,
--   when it started and ended, and where the pair went next. The window
--   bounds the attempts' start (the table is partitioned by month of it).
--   Reads raw rows with FINAL. What hookline stats --event shows and
--   analytics.EventHistory returns.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   event    String      the event id (webhook-id)
--   from     DateTime    window start, inclusive
--   to       DateTime    window end, exclusive
-- core: false
SELECT
    endpoint_id,
    attempt,
    tier,
    outcome,
    skipped,
    status_code,
    error_class,
    error,
    latency_ms,
    started_at,
    finished_at,
    next_tier
FROM {db:Identifier}.attempts FINAL
WHERE event_id = {event:String}
    AND started_at >= {from:DateTime} AND started_at < {to:DateTime}
ORDER BY endpoint_id, attempt, started_at
