-- GET /v1/kpis slices: revocation latency per lock, per value of one
-- dimension of the lock (dim: site, vendor, lock_model, lock_firmware;
-- 'all': one row, key '') for revocations requested in a range: from the
-- request to the lock's applied ack (count, p50, p95 ms). Site, model and
-- firmware are the lock registry's (lock_registry, newest version); a lock
-- it does not know has them empty. At most 500 keys.
-- param: dim String = 'lock_firmware'
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site Set(String) = ['s1']
-- param: vendor Set(String) = ['nuki']
-- param: lock_model Set(String) = ['m1']
-- param: lock_firmware Set(String) = ['1.0']
SELECT multiIf({dim:String} = 'site', site_id, {dim:String} = 'vendor', vendor, {dim:String} = 'lock_model', model,
        {dim:String} = 'lock_firmware', firmware, '') AS k,
    count() AS n, quantilesExact(0.5, 0.95)(latency_ms)
FROM (
    SELECT vendor, lock_id, toFloat64(applied - req_ms) AS latency_ms
    FROM (
        SELECT revocation_id, credential_id, min(requested_ms) AS req_ms
        FROM revocations WHERE ts >= {from:DateTime} AND requested_ms >= {from_ms:Int64} AND requested_ms < {to_ms:Int64}
        GROUP BY revocation_id, credential_id
    ) AS revs ALL INNER JOIN (
        SELECT revocation_id, credential_id, vendor, lock_id, min(applied_ms) AS applied
        FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= {from:DateTime}
        GROUP BY revocation_id, credential_id, vendor, lock_id
    ) AS acks USING (revocation_id, credential_id)
) AS lat ANY LEFT JOIN (
    SELECT vendor, lock_id, argMax(site_id, version) AS site_id, argMax(model, version) AS model,
        argMax(firmware, version) AS firmware
    FROM lock_registry GROUP BY vendor, lock_id
) AS locks USING (vendor, lock_id)
WHERE 1
    /*if site*/ AND site_id IN {site:Set(String)} /*end*/
    /*if vendor*/ AND vendor IN {vendor:Set(String)} /*end*/
    /*if lock_model*/ AND model IN {lock_model:Set(String)} /*end*/
    /*if lock_firmware*/ AND firmware IN {lock_firmware:Set(String)} /*end*/
GROUP BY k ORDER BY n DESC, k LIMIT 500
