-- Revocations requested in a range and escalated past the SLA, newest
-- escalation first, and whether a lock of each is still unconfirmed.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT revocation_id, min(escalated_ms),
    revocation_id IN (SELECT revocation_id FROM revocation_locks WHERE ts >= {from:DateTime} AND
        (revocation_id, credential_id, vendor, lock_id) NOT IN (SELECT revocation_id, credential_id, vendor, lock_id
            FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime})) AS open
FROM revocation_escalations WHERE ts >= {from:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
GROUP BY revocation_id ORDER BY min(escalated_ms) DESC, revocation_id
