-- Events per (bucket, key) summed over a summary's parts (UNION ALL built by
-- code; a summary of one part reads that part alone).
-- param: parts Fragment = SELECT intDiv(ts_ms, 3600000) * 3600000 AS b, vendor AS k, uniqExact(event_id) AS c FROM access_events WHERE ts >= toDateTime(1709510400) AND ts < toDateTime(1709514000) GROUP BY b, k UNION ALL SELECT intDiv(hour_ms, 3600000) * 3600000 AS b, vendor AS k, sum(events) AS c FROM access_rollup_site_hourly WHERE hour_ms >= 1709514000000 AND hour_ms < 1709596800000 GROUP BY b, k
SELECT b, k, sum(c) FROM ({parts:Fragment}) GROUP BY b, k
