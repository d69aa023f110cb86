-- The granted uses of credentials stored in [since_ms, until_ms), oldest
-- first (of the newest limit): use_after_revocation's memory of grants at start.
-- param: since_ms Int64 = 1709442367000
-- param: until_ms Int64 = 1709525167000
-- param: limit UInt32 = 1000000
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM (
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM access_events
PREWHERE inserted_ms >= {since_ms:Int64} AND inserted_ms < {until_ms:Int64}
WHERE outcome = 'granted' AND credential_id != ''
ORDER BY inserted_ms DESC
LIMIT {limit:UInt32}
) AS judged
ORDER BY ts_ms
