-- Each detector's top subjects (or doors) by alerts in a week.
-- param: key Choice = subject_id | door_id
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
-- param: top UInt32 = 5
SELECT detector, {key:Choice} AS k, count() AS n FROM alerts FINAL
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
AND {key:Choice} != ''
GROUP BY detector, k ORDER BY detector, n DESC, k LIMIT {top:UInt32} BY detector
