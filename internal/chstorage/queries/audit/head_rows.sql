-- The head (last entry) of every chain, whole: a new chain's start anchors
-- only the heads that verify.
SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash
FROM audit_log WHERE (chain, seq) IN (SELECT chain, max(seq) FROM audit_log GROUP BY chain)
