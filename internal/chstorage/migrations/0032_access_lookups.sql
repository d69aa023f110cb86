-- Small lookup tables kept by materialized views on access_events, so that a
-- filter on a non-leading key column becomes an index range:
-- access_locations: door/lock → site (access_events is ordered by site_id,
-- door_id, ts; a door or lock filter alone cannot use that index);
-- access_identities: credential/device → subject (for the subject-ordered
-- table). One row per (key, month); lookups take DISTINCT. Partitioned by
-- month so retention drops them with the events they came from.
-- shard: cityHash64(door_id, lock_id)
CREATE TABLE IF NOT EXISTS access_locations (
    month DateTime,
    site_id String,
    zone_id String,
    door_id String,
    lock_id String,
    vendor String,
    last_ms Int64
) ENGINE = ReplacingMergeTree(last_ms)
PARTITION BY toYYYYMM(month)
ORDER BY (door_id, lock_id, site_id, zone_id, vendor);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_locations_mv TO access_locations AS
SELECT toDateTime(toStartOfMonth(ts)) AS month, site_id, zone_id, door_id, lock_id, vendor, max(ts_ms) AS last_ms
FROM access_events
GROUP BY month, site_id, zone_id, door_id, lock_id, vendor;

INSERT INTO access_locations (month, site_id, zone_id, door_id, lock_id, vendor, last_ms)
SELECT toDateTime(toStartOfMonth(ts)) AS m, site_id, zone_id, door_id, lock_id, vendor, max(ts_ms)
FROM access_events
GROUP BY m, site_id, zone_id, door_id, lock_id, vendor;

-- shard: cityHash64(credential_id, device_id)
CREATE TABLE IF NOT EXISTS access_identities (
    month DateTime,
    credential_id String,
    device_id String,
    subject_id String,
    last_ms Int64
) ENGINE = ReplacingMergeTree(last_ms)
PARTITION BY toYYYYMM(month)
ORDER BY (credential_id, device_id, subject_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_identities_mv TO access_identities AS
SELECT toDateTime(toStartOfMonth(ts)) AS month, credential_id, device_id, subject_id, max(ts_ms) AS last_ms
FROM access_events
WHERE credential_id != '' OR device_id != ''
GROUP BY month, credential_id, device_id, subject_id;

INSERT INTO access_identities (month, credential_id, device_id, subject_id, last_ms)
SELECT toDateTime(toStartOfMonth(ts)) AS m, credential_id, device_id, subject_id, max(ts_ms)
FROM access_events
WHERE credential_id != '' OR device_id != ''
GROUP BY m, credential_id, device_id, subject_id;
