-- Recomputes the per-subject daily rollup over whole days [from_ms, to_ms):
-- denied and error events only (what subject rankings ask for; granted
-- uses per subject and day would make it barely coarser than the events).
-- param: version UInt64 = 1709528767000000000
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
INSERT INTO access_rollup_subject_daily (ts, day_ms, key_hash, outcome, action, site_id, subject_id, events, version)
SELECT toDateTime(intDiv(d, 1000)), d, cityHash64(outcome, action, site_id, subject_id),
    outcome, action, site_id, subject_id, uniqExact(event_id), {version:UInt64}
FROM (SELECT intDiv(ts_ms, 86400000) * 86400000 AS d, outcome, action, site_id, subject_id, event_id
      FROM access_events_by_subject
      WHERE ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
        AND outcome IN ('denied', 'error'))
GROUP BY d, outcome, action, site_id, subject_id
