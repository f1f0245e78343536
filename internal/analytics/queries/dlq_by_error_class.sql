-- title: Dead-letter arrivals by error class
-- answers: How many attempts sent their event to the DLQ, per error class,
--   with the endpoints and tenants affected and the first and last arrival
--   in the window. Reads raw rows with FINAL, so replayed rows count once.
-- params:
--   db       Identifier  database holding the hookline tables (default hookline)
--   from     DateTime    window start, inclusive
--   to       DateTime    window end, exclusive
--   endpoint String      one endpoint id, or '' for all
--   tenant   String      one tenant, or '' for all
-- core: true
SELECT
    error_class,
    count() AS dlq_arrivals,
    uniqExact(endpoint_id) AS endpoints,
    uniqExact(tenant) AS tenants,
    min(finished_at) AS first_arrival,
    max(finished_at) AS last_arrival
FROM {db:Identifier}.attempts FINAL
WHERE outcome = 'dead_lettered'
    AND started_at >= {from:DateTime} AND started_at < {to:DateTime}
    AND ({endpoint:String} = '' OR endpoint_id = {endpoint:String})
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY error_class
ORDER BY dlq_arrivals DESC, error_class
