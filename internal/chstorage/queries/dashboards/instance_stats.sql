-- The latest figures of every instance that wrote since a time (the live
-- ones), one row each.
-- param: since DateTime = '2024-03-04 05:05:00'
-- param: since_ms Int64 = 1709528700000
SELECT instance, max(ts_ms) AS at_ms, argMax(started_ms, ts_ms) AS started, argMax(consumed_per_s, ts_ms) AS consumed,
    argMax(inserted_per_s, ts_ms) AS inserted, argMax(dead_lettered_per_s, ts_ms) AS dead,
    argMax(consumed_total, ts_ms) AS consumed_n, argMax(inserted_total, ts_ms) AS inserted_n,
    argMax(dead_lettered_total, ts_ms) AS dead_n, argMax(insert_failures_total, ts_ms) AS failures_n,
    argMax(unacknowledged, ts_ms) AS unacked
FROM instance_stats
WHERE ts >= {since:DateTime} AND ts_ms >= {since_ms:Int64}
GROUP BY instance
ORDER BY instance
