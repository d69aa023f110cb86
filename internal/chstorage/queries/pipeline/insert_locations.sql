-- New door/lock → site lookup keys of a stored batch (pipeline.Derived).
-- param: month DateTime = '2024-03-01 00:00:00'
-- param: site_id String = 's1'
-- param: zone_id String = 'z1'
-- param: door_id String = 'd1'
-- param: lock_id String = 'l1'
-- param: vendor String = 'nuki'
-- param: last_ms Int64 = 1709528767123
INSERT INTO access_locations (month, site_id, zone_id, door_id, lock_id, vendor, last_ms)
VALUES ({month:DateTime}, {site_id:String}, {zone_id:String}, {door_id:String}, {lock_id:String}, {vendor:String}, {last_ms:Int64})
