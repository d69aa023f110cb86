-- Events per (bucket, key) from the per-site hourly rollup (site, vendor,
-- action, outcome) over whole hours
-- [from_ms, to_ms), each hour's rows of its highest version (a run writes an
-- hour's keys with one version; older versions go at merge time). where
-- (built by code) leaves out the hours still being rolled up and filters;
-- it filters the newest-version subquery too (a site's summary reads that
-- site's rows, not every site's): a run writes every key the hour's events
-- have, and events only accumulate, so a key's rows of an older version are
-- never the newest of the key's site, vendor, ... either.
-- param: width Int64 = 86400000
-- param: bucket_from_ms Int64 = 1709510400000
-- param: by Choice = site_id | vendor | action | outcome
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: where Fragment = hour_ms NOT IN (1709524800000) AND site_id IN ('s1')
SELECT /*if width*/ intDiv(hour_ms, {width:Int64}) * {width:Int64} /*else*/ toInt64({bucket_from_ms:Int64}) /*end*/ AS b,
    /*if by*/ {by:Choice} /*else*/ '' /*end*/ AS k,
    sum(events) AS c
FROM access_rollup_site_hourly
WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND hour_ms >= {from_ms:Int64} AND hour_ms < {to_ms:Int64}
/*if where*/ AND {where:Fragment} /*end*/
AND (hour_ms, version) IN (
    SELECT hour_ms, max(version) FROM access_rollup_site_hourly
    WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND hour_ms >= {from_ms:Int64} AND hour_ms < {to_ms:Int64}
    /*if where*/ AND {where:Fragment} /*end*/
    GROUP BY hour_ms)
GROUP BY b, k
