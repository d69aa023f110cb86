-- One time window of a re-identified export: the events with each subject's
-- newest organisation reference. Both sides of the JOIN have an alias:
-- current ClickHouse requires it (ALIAS_REQUIRED); 18.16 accepts it.
-- param: table Choice = access_events | access_events_by_subject
-- param: filters Fragment = site_id IN ('s1') AND vendor IN ('nuki', 'seam')
-- param: from_s Int64 = 1709510400
-- param: to_s Int64 = 1709596800
-- param: from_ms Int64 = 1709510400000
-- param: to_ms Int64 = 1709596800000
SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, subject_ref
FROM (
    SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id, credential_id,
    device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
    FROM {table:Choice}
    WHERE /*if filters*/ {filters:Fragment} AND /*end*/ ts >= toDateTime({from_s:Int64}) AND ts < toDateTime({to_s:Int64}) AND ts_ms >= {from_ms:Int64} AND ts_ms < {to_ms:Int64}
) AS events ANY LEFT JOIN (
    SELECT subject_id, argMax(subject_ref, updated_ms) AS subject_ref FROM subject_identities GROUP BY subject_id
) AS identities USING subject_id
ORDER BY ts_ms, event_id
