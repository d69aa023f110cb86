-- The events stored (and so judged, when the detectors run in-process)
-- since a time, oldest first (of the newest limit): the detectors' warm-up at start. inserted_ms
-- is not in the key: this reads that column of every partition (once, at
-- start).
-- param: since_ms Int64 = 1709525167000
-- param: limit UInt32 = 1000000
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM (
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM access_events
PREWHERE inserted_ms >= {since_ms:Int64}
ORDER BY inserted_ms DESC
LIMIT {limit:UInt32}
) AS judged
ORDER BY ts_ms
