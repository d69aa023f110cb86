-- Alerts in a time range by detector, severity and status, optionally of
-- some statuses and one site.
-- param: from DateTime = '2024-02-04 00:00:00'
-- param: to DateTime = '2024-03-05 00:00:00'
-- param: from_ms Int64 = 1707004800000
-- param: to_ms Int64 = 1709596800000
-- param: statuses Set(String) = ['open', 'acknowledged']
-- param: site String = 's1'
SELECT detector, severity, status, count() FROM alerts FINAL
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if statuses*/ AND status IN {statuses:Set(String)} /*end*/
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY detector, severity, status ORDER BY detector, severity, status
