-- Lock health events of a week by vendor (distinct events, locks affected).
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT vendor, uniqExactIf(event_id, action = 'battery_low'), uniqExactIf(event_id, action = 'offline'),
    uniqExactIf(event_id, action = 'lock_jammed'), uniqExact(lock_id)
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
AND action IN ('battery_low', 'offline', 'lock_jammed')
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY vendor ORDER BY vendor
