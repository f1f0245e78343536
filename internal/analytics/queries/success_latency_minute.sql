-- title: Success rate and latency per endpoint per minute
-- answers: For each endpoint and minute: attempts, deliveries (2xx), failures,
--   success rate in percent, and p50/p95/p99 latency in milliseconds of the
--   attempts that sent a request (skipped attempts have no latency). Reads
--   the attempts_1m rollup, never the raw rows.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: false
SELECT
    minute,
    endpoint_id,
    uniqExactMerge(attempts) AS total,
    uniqExactMergeIf(attempts, outcome = 'delivered') AS delivered,
    total - delivered AS failed,
    round(100 * delivered / total, 2) AS success_pct,
    round(toFloat64(arrayElement(quantilesTDigestIfMerge(0.5, 0.95, 0.99)(latency_ms), 1)), 1) AS p50_ms,
    round(toFloat64(arrayElement(quantilesTDigestIfMerge(0.5, 0.95, 0.99)(latency_ms), 2)), 1) AS p95_ms,
    round(toFloat64(arrayElement(quantilesTDigestIfMerge(0.5, 0.95, 0.99)(latency_ms), 3)), 1) AS p99_ms
FROM {db:Identifier}.attempts_1m
WHERE minute >= toStartOfMinute({from:DateTime}) AND minute < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY minute, endpoint_id
ORDER BY minute, endpoint_id
