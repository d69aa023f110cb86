-- Hours marked by inserts since a time, with each hour's latest mark.
-- param: since_s Int64 = 1709528700
SELECT hour_ms, max(marked) FROM access_rollup_dirty WHERE marked >= toDateTime({since_s:Int64}) GROUP BY hour_ms ORDER BY hour_ms
