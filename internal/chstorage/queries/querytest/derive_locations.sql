-- The door/lock → site lookup rows of the events loaded since a time.
-- param: since_ms Int64 = 1709510400000
INSERT INTO access_locations (month, site_id, zone_id, door_id, lock_id, vendor, last_ms)
SELECT toDateTime(toStartOfMonth(ts)) AS m, site_id, zone_id, door_id, lock_id, vendor, max(ts_ms)
FROM access_events WHERE inserted_ms >= {since_ms:Int64}
GROUP BY m, site_id, zone_id, door_id, lock_id, vendor
