-- Entries whose action starts with a prefix, optionally for one target, newest first.
-- param: action_prefix String = 'export.'
-- param: target String = 'sub1'
-- param: limit UInt32 = 1000
SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash
FROM audit_log WHERE startsWith(action, {action_prefix:String}) AND ({target:String} = '' OR target = {target:String})
ORDER BY ts_ms DESC, chain, seq DESC LIMIT {limit:UInt32}
