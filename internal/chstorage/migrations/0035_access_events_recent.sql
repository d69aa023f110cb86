-- The last days of access_events ordered by time, for fleet-wide reads of a
-- recent window (the live tail of summaries, unfiltered event searches):
-- access_events is ordered by (site_id, door_id, ts), so an hour across all
-- sites touches a granule of every door in the month. Daily partitions; the
-- rollup job drops days older than rollup.RecentDays + 2 (it is a cache: the
-- events stay in access_events under their retention policy). Filled by a
-- materialized view and back-filled with the last days.
CREATE TABLE IF NOT EXISTS access_events_recent (
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
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_events_recent_mv TO access_events_recent AS
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events
WHERE ts >= now() - 864000;

INSERT INTO access_events_recent (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id,
    door_id, lock_id, subject_id, credential_id, device_id, attested, action, outcome, method, reason,
    vendor_code, break_glass, raw_ref, inserted_ms)
SELECT event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id, subject_id,
    credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass,
    raw_ref, inserted_ms
FROM access_events
WHERE ts >= now() - 864000;
