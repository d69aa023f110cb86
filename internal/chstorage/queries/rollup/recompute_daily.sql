-- Recomputes the daily rollup (every summary dimension but subjects) over
-- whole days [from_ms, to_ms), counting distinct events; all rows of a run
-- share one version.
-- param: version UInt64 = 1709528767000000000
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
INSERT INTO access_rollup_daily (ts, day_ms, key_hash, site_id, vendor, action, outcome, method, reason, events, version)
SELECT toDateTime(intDiv(d, 1000)), d, cityHash64(site_id, vendor, action, outcome, method, reason),
    site_id, vendor, action, outcome, method, reason, uniqExact(event_id), {version:UInt64}
FROM (SELECT intDiv(ts_ms, 86400000) * 86400000 AS d, site_id, vendor, action, outcome, method, reason, event_id
      FROM access_events
      WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64})
GROUP BY d, site_id, vendor, action, outcome, method, reason
