-- When each API token was last used. The request path only notes the time in
-- memory; the token store flushes it here every few seconds (one row per
-- token and flush), so authentication never waits on ClickHouse.
-- shard: cityHash64(token_id)
CREATE TABLE IF NOT EXISTS api_token_usage (
    token_id String,
    last_used_ms Int64
) ENGINE = ReplacingMergeTree(last_used_ms)
ORDER BY token_id;
