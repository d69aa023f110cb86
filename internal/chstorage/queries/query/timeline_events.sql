-- A subject's access events in a time range, newest first, after the
-- cursor (a keyset condition built by code), each event once.
-- param: subject String = 'sub1'
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
-- param: after Fragment = (ts_ms < 1709528767123 OR (ts_ms = 1709528767123 AND event_id < toUUID('6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20')))
-- param: sites Set(String) = ['s1', 's2']
-- param: limit UInt32 = 101
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM access_events_by_subject
WHERE subject_id = {subject:String} AND ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
/*if after*/ AND {after:Fragment} /*end*/
/*if sites*/ AND site_id IN {sites:Set(String)} /*end*/
ORDER BY ts_ms DESC, event_id DESC LIMIT 1 BY event_id LIMIT {limit:UInt32}
