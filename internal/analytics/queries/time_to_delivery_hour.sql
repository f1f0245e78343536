-- title: Time to delivery per hour (p95)
-- answers: For each hour of the window, over the events delivered in it:
--   deliveries, the share delivered on the first attempt in percent, and the
--   median, p95 and maximum seconds from the first attempt to the
--   delivering attempt's end (second precision on ClickHouse 18.x). Exact
--   quantiles. Reads raw rows with FINAL.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive (by delivery time)
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: false
SELECT
    hour,
    count() AS delivered,
    round(100 * countIf(attempt = 1) / count(), 2) AS first_try_pct,
    round(quantileExact(0.5)(seconds), 3) AS p50_s,
    round(quantileExact(0.95)(seconds), 3) AS p95_s,
    round(max(seconds), 3) AS max_s
FROM
(
    SELECT
        toStartOfHour(toDateTime(finished_at)) AS hour,
        attempt,
        toFloat64(finished_at) - toFloat64(first_attempt_at) AS seconds
    FROM {db:Identifier}.attempts FINAL
    WHERE outcome = 'delivered'
        AND finished_at >= {from:DateTime} AND finished_at < {to:DateTime}
        AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
        AND ({tenant:String} = '' OR tenant = {tenant:String})
)
GROUP BY hour
ORDER BY hour
