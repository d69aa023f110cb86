-- Hours marked by inserts since a time.
-- param: since_s Int64 = 1709528700
SELECT DISTINCT hour_ms FROM access_rollup_dirty WHERE marked >= toDateTime({since_s:Int64}) ORDER BY hour_ms
