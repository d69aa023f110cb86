-- The week's revocations escalated past the SLA (revocation_overdue), newest
-- first, with their scope and subject and how many of their locks have not
-- confirmed (an applied ack since the week began) yet.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: limit UInt32 = 50
SELECT revocation_id, scope, subject_id, req_ms, esc_ms, alert_id, pending FROM (
    SELECT revocation_id, min(requested_ms) AS req_ms, min(escalated_ms) AS esc_ms, any(alert_id) AS alert_id
    FROM revocation_escalations
    WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
    GROUP BY revocation_id
) AS esc ANY LEFT JOIN (
    SELECT revocation_id, any(scope) AS scope, any(subject_id) AS subject_id, toUInt64(countIf(
        (revocation_id, credential_id, vendor, lock_id) NOT IN (SELECT revocation_id, credential_id, vendor, lock_id
            FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime}))) AS pending
    FROM (SELECT r.revocation_id, r.credential_id, r.vendor, r.lock_id, s.scope, s.subject_id FROM (
            SELECT revocation_id, credential_id, vendor, lock_id FROM revocation_locks
            WHERE ts >= {from:DateTime} AND ts <= {to:DateTime}
            GROUP BY revocation_id, credential_id, vendor, lock_id) AS r
        ANY LEFT JOIN (SELECT revocation_id, credential_id, any(scope) AS scope, any(subject_id) AS subject_id
            FROM revocations WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} GROUP BY revocation_id, credential_id) AS s
        USING (revocation_id, credential_id))
    GROUP BY revocation_id
) AS rev USING (revocation_id)
ORDER BY esc_ms DESC, revocation_id LIMIT {limit:UInt32}
