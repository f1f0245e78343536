-- title: Time from first attempt to delivery
-- answers: For events delivered in the window, per endpoint: deliveries,
--   the share delivered on the first attempt in percent, the mean number of
--   attempts, and the median, p95 and maximum seconds from the first attempt
--   to the delivering attempt's end (second precision on ClickHouse 18.x).
--   Slowest p95 first. Reads raw rows with FINAL.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (by delivery time)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: true
SELECT
    endpoint_id,
    count() AS delivered,
    round(100 * countIf(attempt = 1) / count(), 2) AS first_try_pct,
    round(avg(attempt), 2) AS avg_attempts,
    round(quantileExact(0.5)(seconds), 3) AS p50_s,
    round(quantileExact(0.95)(seconds), 3) AS p95_s,
    round(max(seconds), 3) AS max_s
FROM
(
    SELECT
        endpoint_id,
        attempt,
        toFloat64(finished_at) - toFloat64(first_attempt_at) AS seconds
    FROM {db:Identifier}.attempts FINAL
    WHERE outcome = 'delivered'
        AND finished_at >= {from:DateTime} AND finished_at < {to:DateTime}
        AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
        AND ({tenant:String} = '' OR tenant = {tenant:String})
)
GROUP BY endpoint_id
ORDER BY p95_s DESC, endpoint_id
