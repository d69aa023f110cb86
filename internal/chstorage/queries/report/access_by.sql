-- A period's access events by one dimension (site_id or vendor), optionally
-- of one site: distinct events, denied, the doors' offline and battery-low
-- reports, and distinct subjects.
-- param: dim Choice = site_id | vendor
-- param: from DateTime = '2024-03-04 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
SELECT {dim:Choice} AS k, uniqExact(event_id), uniqExactIf(event_id, outcome = 'denied'),
    uniqExactIf(event_id, action = 'offline'), uniqExactIf(event_id, action = 'battery_low'),
    uniqExactIf(subject_id, subject_id != '')
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if site*/ AND site_id = {site:String} /*end*/
GROUP BY k ORDER BY k
