-- Recomputes the per-site hourly rollup over whole hours [from_ms, to_ms),
-- counting distinct events; all rows of a run share one version.
-- param: version UInt64 = 1709528767000000000
-- param: from_s Int64 = 1709524800
-- param: to_s Int64 = 1709532000
-- param: from_ms Int64 = 1709524800000
-- param: to_ms Int64 = 1709532000000
INSERT INTO access_rollup_site_hourly (ts, hour_ms, key_hash, site_id, vendor, action, outcome, events, version)
SELECT toDateTime(intDiv(h, 1000)), h, cityHash64(site_id, vendor, action, outcome),
    site_id, vendor, action, outcome, uniqExact(event_id), {version:UInt64}
FROM (SELECT intDiv(ts_ms, 3600000) * 3600000 AS h, site_id, vendor, action, outcome, event_id
      FROM access_events
      WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64})
GROUP BY h, site_id, vendor, action, outcome
