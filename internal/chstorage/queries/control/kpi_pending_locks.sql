-- Locks that have not acknowledged revocations sent in a range before a
-- deadline (the SLA ago), most such revocations first.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: deadline_ms Int64 = 1709528767123
SELECT vendor, lock_id, count(), min(first_ms) FROM (
    SELECT revocation_id, credential_id, vendor, lock_id, min(issued_ms) AS first_ms
    FROM revocation_locks WHERE ts >= {from:DateTime} AND issued_ms >= {from_ms:Int64} AND issued_ms < {to_ms:Int64}
    GROUP BY revocation_id, credential_id, vendor, lock_id
) WHERE first_ms < {deadline_ms:Int64} AND (revocation_id, credential_id, vendor, lock_id) NOT IN (
    SELECT revocation_id, credential_id, vendor, lock_id FROM lock_acks
    WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime})
GROUP BY vendor, lock_id ORDER BY count() DESC, vendor, lock_id
