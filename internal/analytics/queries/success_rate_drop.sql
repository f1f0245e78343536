-- title: Endpoints whose success rate dropped most in the last hour
-- answers: Endpoints with attempts both in the last hour before the window
--   end and in the 24 hours before that hour, whose success rate (deliveries
--   per attempt, in percent) is lower now: attempts and deliveries in each
--   period, both rates and the drop in percentage points. Largest drop
--   first; the window start is not used. Reads the attempts_1m rollup.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   to       DateTime    end of the last hour (now): the hour is [to - 1h, to), the day before it [to - 25h, to - 1h)
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
--   limit    UInt32      how many endpoints to list
-- core: false
SELECT
    endpoint_id,
    any(tenant) AS endpoint_tenant,
    uniqExactMergeIf(attempts, minute >= toStartOfMinute({to:DateTime}) - INTERVAL 1 HOUR) AS last_hour_total,
    uniqExactMergeIf(attempts, minute >= toStartOfMinute({to:DateTime}) - INTERVAL 1 HOUR AND outcome = 'delivered') AS last_hour_delivered,
    uniqExactMergeIf(attempts, minute < toStartOfMinute({to:DateTime}) - INTERVAL 1 HOUR) AS day_before_total,
    uniqExactMergeIf(attempts, minute < toStartOfMinute({to:DateTime}) - INTERVAL 1 HOUR AND outcome = 'delivered') AS day_before_delivered,
    round(100 * last_hour_delivered / last_hour_total, 2) AS last_hour_success_pct,
    round(100 * day_before_delivered / day_before_total, 2) AS day_before_success_pct,
    round(day_before_success_pct - last_hour_success_pct, 2) AS drop_pct_points
FROM {db:Identifier}.attempts_1m
WHERE minute >= toStartOfMinute({to:DateTime}) - INTERVAL 25 HOUR AND minute < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY endpoint_id
HAVING last_hour_total > 0 AND day_before_total > 0 AND drop_pct_points > 0
ORDER BY drop_pct_points DESC, endpoint_id
LIMIT {limit:UInt32}
