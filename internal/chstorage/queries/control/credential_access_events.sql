-- The access events made with a credential since a time (at most 10,000,
-- oldest first).
-- param: credential_id String = 'c1'
-- param: from DateTime = '2024-03-04 05:00:00'
SELECT toString(event_id), ts_ms, site_id, door_id, lock_id, action, outcome, method, reason, break_glass
FROM access_events WHERE credential_id = {credential_id:String} AND ts >= {from:DateTime}
ORDER BY ts_ms LIMIT 1 BY event_id LIMIT 10000
