-- title: Attempts and retries by tier
-- answers: For each stage that made attempts ("events" for first attempts,
--   then each retry tier): attempts, deliveries, attempts that moved on to a
--   retry tier, attempts that dead-lettered, success rate in percent and p95
--   latency in milliseconds. Attempts in retry tiers are the retries. Reads
--   the attempts_1m rollup.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: true
SELECT
    tier,
    uniqExactMerge(attempts) AS total,
    uniqExactMergeIf(attempts, outcome = 'delivered') AS delivered,
    uniqExactMergeIf(attempts, outcome = 'retry') AS retried,
    uniqExactMergeIf(attempts, outcome = 'dead_lettered') AS dead_lettered,
    round(100 * delivered / total, 2) AS success_pct,
    round(toFloat64(arrayElement(quantilesTDigestIfMerge(0.5, 0.95, 0.99)(latency_ms), 2)), 1) AS p95_ms
FROM {db:Identifier}.attempts_1m
WHERE minute >= toStartOfMinute({from:DateTime}) AND minute < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY tier
ORDER BY total DESC, tier
