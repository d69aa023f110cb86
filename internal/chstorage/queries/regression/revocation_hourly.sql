-- regression: lock revocation acknowledgements per hour (of the request)
-- and value of one lock dimension (lock_firmware or lock_model, from the
-- lock registry's newest version; '' when it does not know the lock) over
-- a time range: how many locks applied a revocation and their summed
-- latency from the request (ms).
-- param: dim String = 'lock_firmware'
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT if({dim:String} = 'lock_model', model, firmware) AS k, intDiv(req_ms, 3600000) * 3600000 AS h, count(),
    sum(toInt64(applied - req_ms))
FROM (
    SELECT vendor, lock_id, req_ms, applied
    FROM (
        SELECT revocation_id, credential_id, min(requested_ms) AS req_ms
        FROM revocations WHERE ts >= {from:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
        GROUP BY revocation_id, credential_id
    ) AS revs ALL INNER JOIN (
        SELECT revocation_id, credential_id, vendor, lock_id, min(applied_ms) AS applied
        FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime}
        GROUP BY revocation_id, credential_id, vendor, lock_id
    ) AS acks USING (revocation_id, credential_id)
    WHERE applied >= req_ms
) AS lat ANY LEFT JOIN (
    SELECT vendor, lock_id, argMax(model, version) AS model, argMax(firmware, version) AS firmware
    FROM lock_registry GROUP BY vendor, lock_id
) AS locks USING (vendor, lock_id)
GROUP BY k, h ORDER BY k, h
