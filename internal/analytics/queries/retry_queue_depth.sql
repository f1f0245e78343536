-- title: Retry queue depth per tier over time
-- answers: For each retry tier and each minute of the window in which its
--   queue changed: the pairs (event, endpoint) that entered the tier (an
--   attempt failed and was routed there), the pairs the tier took (it made
--   their attempt), and the depth after that minute: pairs waiting in the
--   tier. The depth holds until the next row of the tier. Counts from a day
--   before the window start, so pairs that entered earlier and still wait
--   are in it. Reads raw rows with FINAL.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (rounded down to the minute)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: false
SELECT
    tier,
    tupleElement(change, 1) AS minute,
    tupleElement(change, 2) AS entered,
    tupleElement(change, 3) AS taken,
    depth
FROM
(
    SELECT
        tier,
        arraySort(groupArray((minute, entered, taken))) AS changes,
        arrayCumSum(arrayMap(c -> toInt64(tupleElement(c, 2)) - toInt64(tupleElement(c, 3)), changes)) AS depths
    FROM
    (
        SELECT tier, minute, sum(entered) AS entered, sum(taken) AS taken
        FROM
        (
            SELECT
                next_tier AS tier,
                toStartOfMinute(toDateTime(finished_at)) AS minute,
                toUInt64(1) AS entered,
                toUInt64(0) AS taken
            FROM {db:Identifier}.attempts FINAL
            WHERE outcome = 'retry' AND next_tier != ''
                AND finished_at >= {from:DateTime} - INTERVAL 1 DAY AND finished_at < {to:DateTime}
                AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
                AND ({tenant:String} = '' OR tenant = {tenant:String})
            UNION ALL
            SELECT
                tier,
                toStartOfMinute(toDateTime(started_at)) AS minute,
                toUInt64(0) AS entered,
                toUInt64(1) AS taken
            FROM {db:Identifier}.attempts FINAL
            WHERE tier != 'events'
                AND started_at >= {from:DateTime} - INTERVAL 1 DAY AND started_at < {to:DateTime}
                AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
                AND ({tenant:String} = '' OR tenant = {tenant:String})
        )
        GROUP BY tier, minute
    )
    GROUP BY tier
)
ARRAY JOIN changes AS change, depths AS depth
WHERE minute >= toStartOfMinute({from:DateTime})
ORDER BY tier, minute
