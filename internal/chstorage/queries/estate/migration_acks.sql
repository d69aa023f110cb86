-- The first applied grant and revoke ack per credential and lock of a
-- migration's vendors and locks stored since it was requested (acked_ms is
-- keyfleet's clock; ts, the gateway's applied time, only prunes partitions).
-- param: from DateTime = '2024-03-04 04:06:07'
-- param: requested_ms Int64 = 1709528767123
-- param: from_vendor String = 'seam'
-- param: to_vendor String = 'nuki'
-- param: locks Array(String) = ['l1', 'l2']
SELECT credential_id, vendor, lock_id, type, min(applied_ms)
FROM lock_acks
WHERE status = 'applied' AND ts >= {from:DateTime} AND acked_ms >= {requested_ms:Int64}
    AND (type = 'grant' OR type = 'revoke')
    AND (vendor = {from_vendor:String} OR vendor = {to_vendor:String}) AND has({locks:Array(String)}, lock_id)
GROUP BY credential_id, vendor, lock_id, type
