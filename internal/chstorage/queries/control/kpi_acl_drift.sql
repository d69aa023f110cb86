-- Full ACL resyncs in a range: all, on reconnect, on drift, and the locks
-- that drifted.
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
SELECT count(), countIf(reason = 'reconnect'), countIf(reason = 'drift'), uniqExactIf(vendor, lock_id, reason = 'drift')
FROM acl_resyncs WHERE ts >= {from:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
