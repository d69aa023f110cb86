-- Last-use times flushed from memory, one row per token and flush.
-- param: token_id String = 't1'
-- param: last_used_ms Int64 = 1709528767123
INSERT INTO api_token_usage (token_id, last_used_ms) VALUES ({token_id:String}, {last_used_ms:Int64})
