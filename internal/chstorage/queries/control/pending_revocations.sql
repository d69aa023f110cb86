-- The locks of the revocations since a time that have neither
-- acknowledged them as applied nor been given up on.
-- param: from DateTime = '2024-03-04 05:00:00'
SELECT l.revocation_id, l.credential_id, l.vendor, l.lock_id, l.issued_ms, r.requested_ms, r.scope, r.subject_id
FROM (
    SELECT revocation_id, credential_id, vendor, lock_id, issued_ms FROM revocation_locks FINAL WHERE ts >= {from:DateTime}
) AS l ANY LEFT JOIN (
    SELECT revocation_id, credential_id, requested_ms, scope, subject_id FROM revocations FINAL WHERE ts >= {from:DateTime}
) AS r USING (revocation_id, credential_id)
WHERE (revocation_id, credential_id, vendor, lock_id) NOT IN (
    SELECT revocation_id, credential_id, vendor, lock_id FROM lock_acks
    WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime})
AND (revocation_id, credential_id, vendor, lock_id) NOT IN (
    SELECT revocation_id, credential_id, vendor, lock_id FROM lock_command_outcomes
    WHERE revocation_id != '' AND ts >= {from:DateTime})
