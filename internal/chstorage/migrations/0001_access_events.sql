-- Normalized access events, one row per event (the common schema).
-- ReplacingMergeTree on a sorting key that ends in event_id: a re-delivered
-- event (same deterministic event_id) collapses into one row at merge time;
-- counting queries use a dedup-safe form (FINAL, or uniqExact(event_id)).
-- ts is the event time in seconds for partitioning and range pruning; ts_ms
-- keeps milliseconds (18.16 has no DateTime64).
-- shard: cityHash64(toString(event_id))
CREATE TABLE IF NOT EXISTS access_events (
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
ORDER BY (site_id, door_id, ts, event_id);

-- Records the normalizer could not map: the DLQ topic mirrored for reports.
-- The payload stays in Kafka (it may hold personal data); size and digest identify it.
-- shard: cityHash64(source)
CREATE TABLE IF NOT EXISTS dead_letters (
    ts DateTime,
    ts_ms Int64,
    vendor String,
    reason String,
    error String,
    source String,
    payload_size UInt32,
    payload_sha256 String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, source);
