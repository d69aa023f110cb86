-- The lock registry's history: every record of lock.registry (the compacted
-- topic every instance follows for the current state), one row per lock and
-- version, written by a consumer group like credential_events. A lock's rows
-- in version order say who registered, changed, imported or retired it and
-- what it was; record keeps the record as published.
-- shard: cityHash64(vendor, lock_id)
CREATE TABLE IF NOT EXISTS lock_registry (
    vendor String,
    lock_id String,
    version UInt64,
    ts DateTime,
    ts_ms Int64,
    op String,
    actor String,
    reason String,
    retired UInt8,
    site_id String,
    zone_id String,
    door_id String,
    groups Array(String),
    model String,
    firmware String,
    tier UInt8,
    record String,
    inserted_ms Int64
) ENGINE = ReplacingMergeTree
ORDER BY (vendor, lock_id, version);
