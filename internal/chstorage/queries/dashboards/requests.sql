-- Provisioning requests in a time range with their items' pending, done and
-- failed counts (optionally only those with items pending).
-- Both sides of the JOIN have an alias: current ClickHouse requires it
-- (ALIAS_REQUIRED, joined_subquery_requires_alias); 18.16 accepts it.
-- param: from DateTime = '2024-02-04 00:00:00'
-- param: to DateTime = '2024-03-05 00:00:00'
-- param: from_ms Int64 = 1707004800000
-- param: to_ms Int64 = 1709596800000
-- param: pending Bool = true
-- param: limit UInt32 = 50
SELECT request_id, kind, who, created, n, pending, done, failed FROM (
    SELECT request_id, any(kind) AS kind, any(caller) AS who, max(created_ms) AS created, toUInt64(max(total)) AS n
    FROM control_requests
    WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND created_ms >= {from_ms:Int64} AND created_ms < {to_ms:Int64}
    GROUP BY request_id
) AS requests ANY LEFT JOIN (
    SELECT request_id, countIf(status = 'pending') AS pending, countIf(status IN ('issued', 'applied')) AS done,
        countIf(status = 'failed') AS failed
    FROM control_request_items FINAL
    WHERE request_id IN (SELECT request_id FROM control_requests WHERE ts >= {from:DateTime} AND ts <= {to:DateTime})
    GROUP BY request_id
) AS items USING (request_id)
/*if pending*/ WHERE pending > 0 /*end*/
ORDER BY created DESC, request_id LIMIT {limit:UInt32}
