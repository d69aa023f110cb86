-- Revocation latency per revoked credential requested in a range: from the
-- request to the last lock's applied ack (to the disable without locks);
-- how many are done, and the quantiles of those.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT count(), countIf(done), quantilesExactIf(0.5, 0.95, 0.99)(latency_ms, done)
FROM (
    SELECT (n_locks = 0 AND dis_ms > 0) OR (n_locks > 0 AND acked >= n_locks) AS done,
        toFloat64(if(n_locks = 0, dis_ms, greatest(last_applied, dis_ms)) - req_ms) AS latency_ms
    FROM (
        SELECT revocation_id, credential_id, min(requested_ms) AS req_ms, max(locks_total) AS n_locks,
            max(disabled_ms) AS dis_ms
        FROM revocations WHERE ts >= {from:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
        GROUP BY revocation_id, credential_id
    ) AS revs ANY LEFT JOIN (
        SELECT revocation_id, credential_id, uniqExact(vendor, lock_id) AS acked, max(applied_ms) AS last_applied
        FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime}
        GROUP BY revocation_id, credential_id
    ) AS acks USING (revocation_id, credential_id)
)
