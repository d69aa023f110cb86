-- The keys with the most events over a summary's parts (each part yields
-- (b, k, c) rows over a disjoint share of the range; UNION ALL built by code).
-- param: parts Fragment = SELECT toInt64(1709510400000) AS b, site_id AS k, uniqExact(event_id) AS c FROM access_events WHERE ts >= toDateTime(1709510400) AND ts < toDateTime(1709596800) GROUP BY b, k UNION ALL SELECT toInt64(1709510400000) AS b, site_id AS k, sum(events) AS c FROM access_rollup_site_hourly WHERE hour_ms >= 1709424000000 AND hour_ms < 1709510400000 GROUP BY b, k
-- param: limit UInt32 = 21
SELECT k, sum(c) AS t FROM ({parts:Fragment}) GROUP BY k ORDER BY t DESC, k LIMIT {limit:UInt32}
