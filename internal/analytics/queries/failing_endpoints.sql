-- title: Endpoints failing now, and since when
-- answers: Endpoints whose latest attempt in the window did not deliver,
--   with the start of the current failure streak (the first attempt after
--   their last delivery in the window, or the first in the window if none
--   delivered), the failed attempts and distinct events since then, and the
--   latest error class and HTTP status. Longest-failing first. Reads raw
--   rows with FINAL, so replayed rows count once.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive: how far back to look
--   to       DateTime    window end, exclusive (now)
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: true
SELECT
    endpoint_id,
    any(tenant) AS tenant,
    min(started_at) AS failing_since,
    max(started_at) AS last_attempt,
    count() AS failed_attempts,
    uniqExact(event_id) AS events,
    argMax(error_class, started_at) AS last_error_class,
    argMax(status_code, started_at) AS last_status
FROM {db:Identifier}.attempts FINAL
ALL INNER JOIN
(
    SELECT
        endpoint_id,
        maxIf(started_at, outcome = 'delivered') AS last_delivered
    FROM {db:Identifier}.attempts FINAL
    WHERE started_at >= {from:DateTime} AND started_at < {to:DateTime}
        AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
        AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY endpoint_id
    HAVING argMax(outcome, started_at) != 'delivered'
) AS streak USING endpoint_id
WHERE started_at > last_delivered
    AND started_at >= {from:DateTime} AND started_at < {to:DateTime}
GROUP BY endpoint_id
ORDER BY failing_since, endpoint_id
