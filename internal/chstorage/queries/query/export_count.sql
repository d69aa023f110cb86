-- How many events an export would stream (an upper bound: duplicates not
-- merged yet count), checked before streaming.
-- param: table Choice = access_events | access_events_by_subject
-- param: filters Fragment = site_id IN ('s1') AND vendor IN ('nuki', 'seam')
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT count() FROM {table:Choice}
WHERE /*if filters*/ {filters:Fragment} AND /*end*/ ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
