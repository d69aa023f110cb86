-- Alerts of a week by detector and severity (and how many are still open).
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT detector, severity, count(), countIf(status = 'open') FROM alerts FINAL
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY detector, severity ORDER BY detector, severity
