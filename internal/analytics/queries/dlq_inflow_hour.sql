-- title: Dead-letter inflow per hour
-- answers: For each hour of the window in which attempts dead-lettered
--   (hours without any are left out): the attempts that sent their event to
--   the DLQ, and how many endpoints and tenants they were for. Hours are
--   those of the attempts' start. Reads the attempts_1m rollup.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: false
SELECT
    toStartOfHour(minute) AS hour,
    uniqExactMergeIf(attempts, outcome = 'dead_lettered') AS dlq_arrivals,
    uniqExactIf(endpoint_id, outcome = 'dead_lettered') AS endpoints,
    uniqExactIf(tenant, outcome = 'dead_lettered') AS tenants
FROM {db:Identifier}.attempts_1m
WHERE minute >= toStartOfMinute({from:DateTime}) AND minute < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY hour
HAVING dlq_arrivals > 0
ORDER BY hour
