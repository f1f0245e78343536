-- title: Failure rate by endpoint
-- answers: For each endpoint with attempts in the window: its tenant (endpoint_tenant),
--   attempts, failed attempts (any outcome but delivered), the failure rate
--   in percent and the attempts that dead-lettered. Highest failure rate
--   first. Reads the attempts_1m rollup.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
--   limit    UInt32      how many endpoints to list
-- core: false
SELECT
    endpoint_id,
    any(tenant) AS endpoint_tenant,
    uniqExactMerge(attempts) AS total,
    uniqExactMergeIf(attempts, outcome != 'delivered') AS failed,
    round(100 * failed / total, 2) AS failure_pct,
    uniqExactMergeIf(attempts, outcome = 'dead_lettered') AS dead_lettered
FROM {db:Identifier}.attempts_1m
WHERE minute >= toStartOfMinute({from:DateTime}) AND minute < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY endpoint_id
ORDER BY failure_pct DESC, failed DESC, endpoint_id
LIMIT {limit:UInt32}
