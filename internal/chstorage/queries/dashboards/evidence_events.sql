-- Access events by id around an alert (each once), oldest first.
-- param: from DateTime = '2024-03-03 00:00:00'
-- param: to DateTime = '2024-03-05 00:00:00'
-- param: ids Set(String) = ['6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b20', '6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b21']
-- param: site String = 's1'
SELECT toString(event_id), ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
FROM access_events
WHERE ts >= {from:DateTime} AND ts <= {to:DateTime} AND toString(event_id) IN {ids:Set(String)}
/*if site*/ AND site_id = {site:String} /*end*/
ORDER BY ts_ms, event_id LIMIT 1 BY event_id
