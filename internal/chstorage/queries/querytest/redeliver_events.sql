-- Inserts again about one stored event in every `every` (as an at-least-once
-- pipeline does after a crash): duplicates not merged yet.
-- param: every UInt64 = 7
INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
    lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code,
    break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, inserted_ms
FROM access_events WHERE cityHash64(toString(event_id)) % {every:UInt64} = 0 LIMIT 1 BY event_id
