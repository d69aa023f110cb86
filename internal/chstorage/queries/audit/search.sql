-- Audit entries matching a search (each part optional), newest first, after
-- a cursor (the last entry of the previous page).
-- param: actor String = 'tok_1'
-- param: action String = 'credential.'
-- param: target String = 'c1'
-- param: from_ms Int64 = 1709251200000
-- param: to_ms Int64 = 1709856000000
-- param: after Bool = true
-- param: after_ts Int64 = 1709856000000
-- param: after_chain String = 'main'
-- param: after_seq UInt64 = 10
-- param: limit UInt32 = 100
SELECT chain, seq, ts_ms, actor, action, target, details, prev_hash, hash
FROM audit_log
WHERE 1
/*if actor*/ AND actor = {actor:String} /*end*/
/*if action*/ AND startsWith(action, {action:String}) /*end*/
/*if target*/ AND target = {target:String} /*end*/
/*if from_ms*/ AND ts_ms >= {from_ms:Int64} /*end*/
/*if to_ms*/ AND ts_ms < {to_ms:Int64} /*end*/
/*if after*/ AND (ts_ms < {after_ts:Int64} OR (ts_ms = {after_ts:Int64} AND (chain < {after_chain:String}
    OR (chain = {after_chain:String} AND seq < {after_seq:UInt64})))) /*end*/
ORDER BY ts_ms DESC, chain DESC, seq DESC
LIMIT {limit:UInt32}
