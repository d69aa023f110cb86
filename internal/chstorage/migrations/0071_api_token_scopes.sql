-- The sites a property-scoped API token is limited to (one row per scoped
-- token, written before the token itself, never changed: a token's scope is
-- fixed when it is created, rotation keeps it). A token without a row sees
-- every site. A separate table rather than a column of api_tokens_v2:
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS (see 0120).
-- shard: cityHash64(id)
CREATE TABLE IF NOT EXISTS api_token_scopes (
    id String,
    sites Array(String),
    created_ms Int64
) ENGINE = ReplacingMergeTree
ORDER BY id;
