-- When each API token was last used.
SELECT token_id, max(last_used_ms) FROM api_token_usage GROUP BY token_id
