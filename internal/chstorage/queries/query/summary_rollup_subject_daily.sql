-- Events per (bucket, subject) from the per-subject daily rollup over whole
-- days [from_ms, to_ms), each day's rows of its highest version. where
-- (built by code) leaves out the days still being rolled up and filters,
-- in the newest-version subquery too (see summary_rollup_hourly).
-- param: width Int64 = 86400000
-- param: bucket_from_ms Int64 = 1709510400000
-- param: by Choice = subject_id | site_id | outcome | action
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: where Fragment = day_ms NOT IN (1709510400000) AND outcome IN ('denied') AND subject_id IN ('sub1', 'sub2')
SELECT /*if width*/ intDiv(day_ms, {width:Int64}) * {width:Int64} /*else*/ toInt64({bucket_from_ms:Int64}) /*end*/ AS b,
    /*if by*/ {by:Choice} /*else*/ '' /*end*/ AS k,
    sum(events) AS c
FROM access_rollup_subject_daily
WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND day_ms >= {from_ms:Int64} AND day_ms < {to_ms:Int64}
/*if where*/ AND {where:Fragment} /*end*/
AND (day_ms, version) IN (
    SELECT day_ms, max(version) FROM access_rollup_subject_daily
    WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND day_ms >= {from_ms:Int64} AND day_ms < {to_ms:Int64}
    /*if where*/ AND {where:Fragment} /*end*/
    GROUP BY day_ms)
GROUP BY b, k
