-- Admin audit log: append-only, hash-chained. Each writer (a keyfleet process)
-- appends to its own chain; hash = SHA-256 over the entry and prev_hash, the
-- previous entry's hash. Plain MergeTree (nothing may collapse rows) and no
-- monthly partitions (a retention job must not drop audit history).
-- shard: cityHash64(chain)
CREATE TABLE IF NOT EXISTS audit_log (
    chain String,
    seq UInt64,
    ts DateTime,
    ts_ms Int64,
    actor String,
    action String,
    target String,
    details String,
    prev_hash String,
    hash String
) ENGINE = MergeTree
ORDER BY (chain, seq);
