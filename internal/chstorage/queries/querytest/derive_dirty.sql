-- Marks the hours of the events loaded since a time for the rollup job.
-- param: since_ms Int64 = 1709510400000
INSERT INTO access_rollup_dirty (hour_ms, marked)
SELECT intDiv(ts_ms, 3600000) * 3600000 AS h, now() FROM access_events WHERE inserted_ms >= {since_ms:Int64} GROUP BY h
