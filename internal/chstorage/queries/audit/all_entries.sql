-- The whole log in chain order, for verification.
SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash
FROM audit_log ORDER BY chain, seq
