-- Inserts again the subject-ordered copies of the events redeliver_events
-- repeated (the same choice of events).
-- param: every UInt64 = 7
INSERT INTO access_events_by_subject (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
    lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code,
    break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, inserted_ms
FROM access_events_by_subject WHERE cityHash64(toString(event_id)) % {every:UInt64} = 0 LIMIT 1 BY event_id
