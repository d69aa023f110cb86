-- Vendor migrations (keyfleet estate migrate, POST /v1/estate/migrations):
-- the request, and one row per credential moved from an old lock to its new
-- one. Progress is read from lock_acks: a grant ack of the credential on the
-- new lock and a revoke ack on the old one, applied after the request.
-- shard: cityHash64(migration_id)
CREATE TABLE IF NOT EXISTS estate_migrations (
    migration_id String,
    from_vendor String,
    to_vendor String,
    ts DateTime,
    requested_ms Int64,
    actor String,
    reason String,
    locks UInt32,
    credentials UInt32,
    plan String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY migration_id;

-- shard: cityHash64(migration_id)
CREATE TABLE IF NOT EXISTS estate_migration_moves (
    migration_id String,
    credential_id String,
    from_vendor String,
    from_lock String,
    to_vendor String,
    to_lock String,
    state String,
    ts DateTime,
    requested_ms Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (migration_id, credential_id, from_vendor, from_lock);
