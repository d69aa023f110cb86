-- The exception register's history: every record of exception.register (the
-- compacted topic every instance follows for the current state), one row per
-- exception and version, written by a consumer group like lock_registry. An
-- exception's rows in version order say who recorded, changed or closed it
-- and what it was; record keeps the record as published (JSON). The current
-- register is the newest version of each id (argMax by version).
-- shard: cityHash64(id)
CREATE TABLE IF NOT EXISTS exceptions (
    id String,
    version UInt64,
    ts DateTime,
    ts_ms Int64,
    op String,
    actor String,
    kind String,
    reason String,
    status String,
    site_id String,
    start_ms Int64,
    expiry_ms Int64,
    review_ms Int64,
    record String,
    inserted_ms Int64
) ENGINE = ReplacingMergeTree
ORDER BY (id, version);
