-- API tokens with an optional expiry. ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS, and a plain ADD COLUMN would fail forever after
-- a crash between it and the migration's record; so api_tokens_v2 replaces
-- api_tokens (0002), which keeps its rows but is no longer written. The
-- copy is idempotent: a repeated copy inserts identical rows, which
-- ReplacingMergeTree(version) collapses. expires_ms 0: never expires.
-- shard: cityHash64(id)
CREATE TABLE IF NOT EXISTS api_tokens_v2 (
    id String,
    name String,
    role String,
    hash String,
    created_ms Int64,
    revoked_ms Int64,
    expires_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

INSERT INTO api_tokens_v2 (id, name, role, hash, created_ms, revoked_ms, expires_ms, version)
SELECT id, name, role, hash, created_ms, revoked_ms, 0, version FROM api_tokens;
