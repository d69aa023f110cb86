-- Distinct events per (bucket, key) over ranges of the events: a part of a
-- summary (the conditions, ranges and key filter are built by code). Without
-- width one bucket starts at bucket_from_ms; without by there is one key, ''.
-- param: width Int64 = 3600000
-- param: bucket_from_ms Int64 = 1709510400000
-- param: by Choice = site_id | zone_id | door_id | lock_id | vendor | subject_id | credential_id | device_id | action | outcome | method | reason | attested
-- param: table Choice = access_events | access_events_by_subject
-- param: where Fragment = site_id IN ('s1') AND ((ts >= toDateTime(1709510400) AND ts < toDateTime(1709514000) AND ts_ms >= 1709510400000 AND ts_ms < 1709514000000) OR (ts >= toDateTime(1709596800) AND ts < toDateTime(1709600400) AND ts_ms >= 1709596800000 AND ts_ms < 1709600400000))
SELECT /*if width*/ intDiv(ts_ms, {width:Int64}) * {width:Int64} /*else*/ toInt64({bucket_from_ms:Int64}) /*end*/ AS b,
    /*if by*/ {by:Choice} /*else*/ '' /*end*/ AS k,
    uniqExact(event_id) AS c
FROM {table:Choice} WHERE {where:Fragment} GROUP BY b, k
