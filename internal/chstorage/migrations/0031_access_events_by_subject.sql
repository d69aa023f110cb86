-- access_events ordered by subject, for "everything one person did"
-- (GET /v1/events?subject=..., subject timelines): the main table is ordered by
-- (site_id, door_id, ts), so a subject filter would scan whole months.
-- Filled by a materialized view on every insert into access_events, then
-- back-filled from what access_events already holds. A row copied twice (an
-- insert racing the back-fill, a re-delivered batch) is a duplicate like any
-- other: ReplacingMergeTree collapses it and queries are dedup-safe.
-- Events without a subject (door sensors, battery) are not copied.
-- shard: cityHash64(toString(event_id))
CREATE TABLE IF NOT EXISTS access_events_by_subject (
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
ORDER BY (subject_id, ts, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_events_by_subject_mv TO access_events_by_subject AS
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events
WHERE subject_id != '';

INSERT INTO access_events_by_subject (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id,
    door_id, lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason,
    vendor_code, break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events
WHERE subject_id != '';
