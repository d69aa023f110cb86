-- Each credential's last granted use before each week end (one maxIf per
-- end, built by code), in one scan of the weeks' access events.
-- param: uses Fragment = maxIf(ts_ms, ts_ms < 1709510400000), maxIf(ts_ms, ts_ms < 1710115200000)
-- param: from DateTime = '2024-01-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1704326400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT credential_id, {uses:Fragment} FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
AND credential_id != '' AND outcome = 'granted'
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY credential_id
