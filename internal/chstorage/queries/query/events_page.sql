-- One page of an event search: the filters (allow-listed columns, built by
-- code), the time range, and after the cursor's (ts_ms, event_id); each
-- event once (LIMIT 1 BY: duplicates may not be merged yet).
-- param: table Choice = access_events | access_events_by_subject
-- param: filters Fragment = site_id IN ('s1') AND vendor IN ('nuki', 'seam')
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: after Fragment = (ts_ms < 1709528767123 OR (ts_ms = 1709528767123 AND event_id < toUUID('6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20')))
-- param: dir Choice = DESC | ASC
-- param: limit UInt32 = 101
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM {table:Choice}
WHERE /*if filters*/ {filters:Fragment} AND /*end*/ ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if after*/ AND {after:Fragment} /*end*/
ORDER BY ts_ms {dir:Choice}, event_id {dir:Choice} LIMIT 1 BY event_id LIMIT {limit:UInt32}
