-- title: Tenants with the most failures
-- answers: Tenants ranked by failed attempts (any outcome but delivered) in
--   the window, with their attempts, failure rate in percent, how many of
--   their endpoints failed, and their most frequent error class. Reads the
--   attempts_1m rollup.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
--   limit    UInt32      how many tenants to list
-- core: true
SELECT
    tenant,
    sum(class_failed) AS failed,
    sum(class_total) AS total,
    round(100 * failed / total, 2) AS failure_pct,
    length(groupUniqArrayArray(class_failing_endpoints)) AS failing_endpoints,
    argMax(error_class, class_failed) AS top_error_class
FROM
(
    SELECT
        tenant,
        error_class,
        uniqExactMergeIf(attempts, outcome != 'delivered') AS class_failed,
        uniqExactMerge(attempts) AS class_total,
        groupUniqArrayIf(endpoint_id, outcome != 'delivered') AS class_failing_endpoints
    FROM {db:Identifier}.attempts_1m
    WHERE minute >= toStartOfMinute({from:DateTime}) AND minute < {to:DateTime}
        AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
        AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY tenant, error_class
)
GROUP BY tenant
HAVING failed > 0
ORDER BY failed DESC, tenant
LIMIT {limit:UInt32}
