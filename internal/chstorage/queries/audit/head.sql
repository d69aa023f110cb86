-- The head (last entry) of one chain, whole: its MAC is checked before the
-- chain is continued.
-- param: chain String = 'main'
SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash
FROM audit_log WHERE chain = {chain:String} ORDER BY seq DESC LIMIT 1
