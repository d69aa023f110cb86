-- Every API token (the newest version of each), loaded into the cache.
SELECT id, name, role, hash, created_ms, revoked_ms, expires_ms, version FROM api_tokens_v2 FINAL
