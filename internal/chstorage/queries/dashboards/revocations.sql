-- Revocations requested in a time range with their credentials, the locks
-- told, the locks that confirmed and when the revocation was escalated past
-- the SLA (optionally only those still pending, only escalated ones).
-- Every subquery of a JOIN has an alias: current ClickHouse requires it
-- (ALIAS_REQUIRED, joined_subquery_requires_alias); 18.16 accepts it.
-- param: from DateTime = '2024-02-26 00:00:00'
-- param: to DateTime = '2024-03-05 00:00:00'
-- param: from_ms Int64 = 1708905600000
-- param: to_ms Int64 = 1709596800000
-- param: pending Bool = true
-- param: escalated Bool = true
-- param: limit UInt32 = 50
SELECT revocation_id, scope, subject_id, req_ms, creds, locks, acked, last_ack, esc_ms FROM (
SELECT revocation_id, scope, subject_id, req_ms, creds, locks, acked, last_ack FROM (
    SELECT revocation_id, scope, subject_id, req_ms, creds, locks FROM (
        SELECT revocation_id, any(scope) AS scope, any(subject_id) AS subject_id, min(requested_ms) AS req_ms,
            uniqExact(credential_id) AS creds
        FROM revocations
        WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
        GROUP BY revocation_id
    ) AS requested ANY LEFT JOIN (
        SELECT revocation_id, uniqExact(credential_id, vendor, lock_id) AS locks
        FROM revocation_locks WHERE ts >= {from:DateTime} GROUP BY revocation_id
    ) AS told USING (revocation_id)
) AS revs ANY LEFT JOIN (
    SELECT revocation_id, uniqExact(credential_id, vendor, lock_id) AS acked, max(applied_ms) AS last_ack
    FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime} GROUP BY revocation_id
) AS confirmed USING (revocation_id)
) AS tracked ANY LEFT JOIN (
    SELECT revocation_id, min(escalated_ms) AS esc_ms
    FROM revocation_escalations WHERE ts >= {from:DateTime} GROUP BY revocation_id
) AS escalations USING (revocation_id)
WHERE 1 /*if pending*/ AND acked < locks /*end*/ /*if escalated*/ AND esc_ms > 0 /*end*/
ORDER BY req_ms DESC, revocation_id LIMIT {limit:UInt32}
