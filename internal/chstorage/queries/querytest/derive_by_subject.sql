-- Copies the events loaded since a time into the subject-ordered copy (the
-- writer does it for the events it stores, pipeline.Derived).
-- param: since_ms Int64 = 1709510400000
INSERT INTO access_events_by_subject (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id,
    lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code,
    break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, inserted_ms
FROM access_events WHERE inserted_ms >= {since_ms:Int64} AND subject_id != ''
