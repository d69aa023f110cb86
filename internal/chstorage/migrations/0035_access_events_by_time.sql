-- access_events ordered by time, for fleet-wide reads of a time range
-- (searches and summaries without a site/door/lock/subject filter, the
-- not-yet-rolled-up tail of summaries, exports): access_events is ordered by
-- (site_id, door_id, ts), so even one hour across all sites touches a granule
-- of every door in the month. Filled by a materialized view (the same insert
-- cost as any copy: every event is written once more), back-filled from what
-- access_events holds; monthly partitions, dropped with access_events'
-- (retention treats it as derived).
-- shard: cityHash64(toString(event_id))
CREATE TABLE IF NOT EXISTS access_events_by_time (
    event_id UUID,
    ts DateTime,
    ts_ms Int64,
    received_ms Int64,
    vendor String,
    site_id String,
    zone_id String,
    door_id String,
    lock_id String,
    subject_id String,
    credential_id String,
    device_id String,
    attested String,
    action String,
    outcome String,
    method String,
    reason String,
    vendor_code String,
    break_glass UInt8,
    raw_ref String,
    inserted_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_events_by_time_mv TO access_events_by_time AS
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events;

INSERT INTO access_events_by_time (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id,
    door_id, lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason,
    vendor_code, break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events;
