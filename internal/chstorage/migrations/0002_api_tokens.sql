-- API tokens. Only a SHA-256 hash of each token is stored. A change (revoke)
-- inserts a new row with a higher version; ReplacingMergeTree keeps the last.
-- shard: cityHash64(id)
CREATE TABLE IF NOT EXISTS api_tokens (
    id String,
    name String,
    role String,
    hash String,
    created_ms Int64,
    revoked_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;
