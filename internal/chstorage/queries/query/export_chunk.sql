-- One time window of an export in (ts_ms, event_id) order (duplicates are
-- adjacent in that order and skipped while streaming).
-- param: table Choice = access_events | access_events_by_subject
-- param: filters Fragment = site_id IN ('s1') AND vendor IN ('nuki', 'seam')
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM {table:Choice}
WHERE /*if filters*/ {filters:Fragment} AND /*end*/ ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
ORDER BY ts_ms, event_id
