-- Distinct access events per period (w: the index of the period the event
-- falls in, by the periods' starts: weeks, months or quarters): the fleet's,
-- and the site's (all, denied, battery_low, offline, lock_jammed); one scan
-- of access_events over all the periods.
-- param: from DateTime = '2024-02-12 00:00:00'
-- param: to DateTime = '2024-03-11 00:00:00'
-- param: from_ms Int64 = 1707696000000
-- param: to_ms Int64 = 1710115200000
-- param: site String = 's1'
-- param: starts Array(Int64) = [1707696000000, 1708300800000, 1708905600000, 1709510400000]
SELECT toInt64(arraySum(arrayMap(b -> toUInt8(ts_ms >= b), {starts:Array(Int64)}))) - 1 AS w,
    uniqExact(event_id),
    uniqExactIf(event_id, /*if site*/ site_id = {site:String} /*else*/ 1 /*end*/),
    uniqExactIf(event_id, /*if site*/ site_id = {site:String} /*else*/ 1 /*end*/ AND outcome = 'denied'),
    uniqExactIf(event_id, /*if site*/ site_id = {site:String} /*else*/ 1 /*end*/ AND action = 'battery_low'),
    uniqExactIf(event_id, /*if site*/ site_id = {site:String} /*else*/ 1 /*end*/ AND action = 'offline'),
    uniqExactIf(event_id, /*if site*/ site_id = {site:String} /*else*/ 1 /*end*/ AND action = 'lock_jammed')
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
GROUP BY w
